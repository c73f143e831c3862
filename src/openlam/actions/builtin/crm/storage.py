"""The CRM's tables in the project database, and transactions on them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import (
    JSON,
    Column,
    Connection,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    insert,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, OperationalError

from openlam.actions.plugin_config import settings_of
from openlam.actions.spec import ActionContext
from openlam.errors import ActionError
from openlam.memory.engines import engine_for

metadata = MetaData()

crm_companies = Table(
    "crm_companies",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(300), nullable=False),
    Column("name_key", String(300), nullable=False, unique=True),
    Column("domain", String(255), unique=True),
    Column("industry", String(200)),
    Column("website", String(500)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)


crm_contacts = Table(
    "crm_contacts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("email", String(320), nullable=False),
    Column("email_key", String(320), nullable=False, unique=True),
    Column("name", String(300)),
    Column("phone", String(60)),
    Column("title", String(200)),
    Column("company_id", Integer, ForeignKey("crm_companies.id"), index=True),
    Column("tags", JSON, nullable=False, default=list),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)


crm_deals = Table(
    "crm_deals",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("title", String(300), nullable=False),
    Column("company_id", Integer, ForeignKey("crm_companies.id"), index=True),
    Column("contact_id", Integer, ForeignKey("crm_contacts.id"), index=True),
    Column("amount", Numeric(18, 2)),
    Column("currency", String(3)),
    Column("stage", String(40), nullable=False),
    Column("idempotency_key", String(300), unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("closed_at", DateTime(timezone=True)),
)


crm_notes = Table(
    "crm_notes",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("body", Text, nullable=False),
    Column("contact_id", Integer, ForeignKey("crm_contacts.id"), index=True),
    Column("company_id", Integer, ForeignKey("crm_companies.id"), index=True),
    Column("deal_id", Integer, ForeignKey("crm_deals.id"), index=True),
    Column("run_id", String(200)),
    Column("idempotency_key", String(300), unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)


crm_activities = Table(
    "crm_activities",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("kind", String(40), nullable=False),
    Column("summary", Text, nullable=False),
    Column("contact_id", Integer, ForeignKey("crm_contacts.id"), index=True),
    Column("company_id", Integer, ForeignKey("crm_companies.id"), index=True),
    Column("deal_id", Integer, ForeignKey("crm_deals.id"), index=True),
    Column("run_id", String(200)),
    Column("idempotency_key", String(300), unique=True),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)


def _safe(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


@contextmanager
def transaction(ctx: ActionContext) -> Iterator[Connection]:
    """A transaction on the project database; database trouble becomes an ActionError."""
    url = settings_of(ctx).app_database_url
    try:
        with engine_for(url, metadata).begin() as conn:
            yield conn
    except OperationalError as exc:
        raise ActionError(
            f"the project database {_safe(url)} failed: {exc.orig or exc}", transient=True
        ) from None
    except IntegrityError as exc:
        raise _Conflict(f"the CRM refused the change: {exc.orig or exc}") from None


class _Conflict(ActionError):
    """A uniqueness constraint refused a write (e.g. a concurrent insert of the same key)."""


def insert_row(conn: Connection, table: Table, **values: Any) -> int:
    key = conn.execute(insert(table).values(**values)).inserted_primary_key
    if key is None:  # pragma: no cover - every crm table has an integer primary key
        raise ActionError(f"the database returned no id for the new {table.name} row")
    return int(key[0])


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso_time(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:  # SQLite keeps no zone; everything is stored in UTC
        value = value.replace(tzinfo=UTC)
    return value.isoformat()


T = TypeVar("T")


def retry_on_conflict(fn: Callable[[], T]) -> T:
    """Run an upsert; if a concurrent writer inserted the same key first, run it again."""
    try:
        return fn()
    except _Conflict:
        return fn()
