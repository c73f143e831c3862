"""crm: OpenLAM's own CRM on the project database — contacts, companies, deals, notes,
activities and search.

The tables (prefixed ``crm_``) live in the project database (SQLite by default,
PostgreSQL when ``OPENLAM_DATABASE_URL`` is set) and are created on first use. Contacts are
deduplicated by email address, case-insensitively; companies by domain, else by name.
Creating actions (deals, notes, activities) remember the step's idempotency key, so a
retried or recovered step returns the row it already made instead of adding a second one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from email.utils import parseaddr
from typing import Any, Literal, TypeVar

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
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError
from typing_extensions import TypedDict

from openlam.actions.spec import ActionContext, Risk, action
from openlam.config import Settings, load_settings
from openlam.errors import ActionError
from openlam.memory.engines import engine_for

DEFAULT_STAGES = ("lead", "qualified", "proposal", "negotiation", "won", "lost")
CLOSED_STAGES = ("won", "lost")

# --- the database --------------------------------------------------------------------

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


def _settings(ctx: ActionContext) -> Settings:
    return ctx.settings if isinstance(ctx.settings, Settings) else load_settings(ctx.workspace)


@contextmanager
def _tx(ctx: ActionContext) -> Iterator[Connection]:
    """A transaction on the project database; database trouble becomes an ActionError."""
    url = _settings(ctx).app_database_url
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


def _insert(conn: Connection, table: Table, **values: Any) -> int:
    key = conn.execute(insert(table).values(**values)).inserted_primary_key
    if key is None:  # pragma: no cover - every crm table has an integer primary key
        raise ActionError(f"the database returned no id for the new {table.name} row")
    return int(key[0])


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:  # SQLite keeps no zone; everything is stored in UTC
        value = value.replace(tzinfo=UTC)
    return value.isoformat()


T = TypeVar("T")


def _retry_on_conflict(fn: Callable[[], T]) -> T:
    """Run an upsert; if a concurrent writer inserted the same key first, run it again."""
    try:
        return fn()
    except _Conflict:
        return fn()


# --- output shapes ---------------------------------------------------------------------


class Company(TypedDict):
    id: int
    name: str
    domain: str | None
    industry: str | None
    website: str | None
    created_at: str | None
    updated_at: str | None


class CompanyUpserted(Company):
    created: bool


class Contact(TypedDict):
    id: int
    email: str
    name: str | None
    phone: str | None
    title: str | None
    company: str | None
    company_id: int | None
    tags: list[str]
    created_at: str | None
    updated_at: str | None


class ContactUpserted(Contact):
    created: bool


class Deal(TypedDict):
    id: int
    title: str
    stage: str
    amount: float | None
    currency: str | None
    company: str | None
    company_id: int | None
    contact_email: str | None
    contact_id: int | None
    created_at: str | None
    updated_at: str | None
    closed_at: str | None


class DealStageChanged(Deal):
    previous_stage: str


class Note(TypedDict):
    id: int
    body: str
    contact_id: int | None
    company_id: int | None
    deal_id: int | None
    run_id: str | None
    created_at: str | None


class Activity(TypedDict):
    id: int
    kind: str
    summary: str
    contact_id: int | None
    company_id: int | None
    deal_id: int | None
    run_id: str | None
    occurred_at: str | None


class ContactDetail(Contact):
    deals: list[Deal]
    notes: list[Note]
    activities: list[Activity]


class CompanyDetail(Company):
    contacts: list[Contact]
    deals: list[Deal]
    notes: list[Note]
    activities: list[Activity]


class ContactList(TypedDict):
    contacts: list[Contact]


class DealList(TypedDict):
    deals: list[Deal]


class SearchHit(TypedDict):
    type: Literal["contact", "company", "deal", "note", "activity"]
    id: int
    title: str
    detail: str


class SearchResult(TypedDict):
    query: str
    results: list[SearchHit]


# --- rows to dicts -------------------------------------------------------------------


def _company_name(conn: Connection, company_id: int | None) -> str | None:
    if company_id is None:
        return None
    return conn.execute(
        select(crm_companies.c.name).where(crm_companies.c.id == company_id)
    ).scalar()


def _company(row: Any) -> Company:
    return {
        "id": row.id,
        "name": row.name,
        "domain": row.domain,
        "industry": row.industry,
        "website": row.website,
        "created_at": _iso(row.created_at),
        "updated_at": _iso(row.updated_at),
    }


def _contact(conn: Connection, row: Any) -> Contact:
    return {
        "id": row.id,
        "email": row.email,
        "name": row.name,
        "phone": row.phone,
        "title": row.title,
        "company": _company_name(conn, row.company_id),
        "company_id": row.company_id,
        "tags": list(row.tags or []),
        "created_at": _iso(row.created_at),
        "updated_at": _iso(row.updated_at),
    }


def _deal(conn: Connection, row: Any) -> Deal:
    email = None
    if row.contact_id is not None:
        email = conn.execute(
            select(crm_contacts.c.email).where(crm_contacts.c.id == row.contact_id)
        ).scalar()
    return {
        "id": row.id,
        "title": row.title,
        "stage": row.stage,
        "amount": None if row.amount is None else float(row.amount),
        "currency": row.currency,
        "company": _company_name(conn, row.company_id),
        "company_id": row.company_id,
        "contact_email": email,
        "contact_id": row.contact_id,
        "created_at": _iso(row.created_at),
        "updated_at": _iso(row.updated_at),
        "closed_at": _iso(row.closed_at),
    }


def _note(row: Any) -> Note:
    return {
        "id": row.id,
        "body": row.body,
        "contact_id": row.contact_id,
        "company_id": row.company_id,
        "deal_id": row.deal_id,
        "run_id": row.run_id,
        "created_at": _iso(row.created_at),
    }


def _activity(row: Any) -> Activity:
    return {
        "id": row.id,
        "kind": row.kind,
        "summary": row.summary,
        "contact_id": row.contact_id,
        "company_id": row.company_id,
        "deal_id": row.deal_id,
        "run_id": row.run_id,
        "occurred_at": _iso(row.occurred_at),
    }


# --- lookups ---------------------------------------------------------------------------


def _email_key(email: str) -> str:
    address = parseaddr(email.strip())[1].strip()
    if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", address):
        raise ActionError(f"{email!r} is not an email address; give one like name@example.com")
    return address.lower()


def _domain_key(domain: str) -> str:
    value = domain.strip().lower()
    value = re.sub(r"^[a-z]+://", "", value).split("/")[0]
    return value.removeprefix("www.")


def _find_company(conn: Connection, name: str) -> Any:
    """A company by name (case-insensitive) or by domain."""
    key = name.strip().lower()
    row = conn.execute(select(crm_companies).where(crm_companies.c.name_key == key)).first()
    if row is None:
        row = conn.execute(
            select(crm_companies).where(crm_companies.c.domain == _domain_key(name))
        ).first()
    return row


def _require_contact(conn: Connection, email: str) -> Any:
    row = conn.execute(
        select(crm_contacts).where(crm_contacts.c.email_key == _email_key(email))
    ).first()
    if row is None:
        raise ActionError(
            f"no CRM contact with email {email}; add it with crm.contact_upsert "
            "or look for it with crm.contact_find"
        )
    return row


def _require_company(conn: Connection, name: str) -> Any:
    row = _find_company(conn, name)
    if row is None:
        raise ActionError(f"no CRM company named {name!r}; add it with crm.company_upsert")
    return row


def _require_deal(conn: Connection, deal_id: int) -> Any:
    row = conn.execute(select(crm_deals).where(crm_deals.c.id == deal_id)).first()
    if row is None:
        raise ActionError(f"no CRM deal with id {deal_id}; list deals with crm.deal_list")
    return row


def _upsert_company(
    conn: Connection,
    name: str,
    domain: str | None = None,
    industry: str | None = None,
    website: str | None = None,
) -> tuple[Any, bool]:
    name = name.strip()
    if not name:
        raise ActionError("a company needs a name")
    row = None
    domain_key = _domain_key(domain) if domain else None
    if domain_key:
        row = conn.execute(
            select(crm_companies).where(crm_companies.c.domain == domain_key)
        ).first()
    if row is None:
        row = conn.execute(
            select(crm_companies).where(crm_companies.c.name_key == name.lower())
        ).first()
    now = _now()
    if row is None:
        new_id = _insert(
            conn,
            crm_companies,
            name=name,
            name_key=name.lower(),
            domain=domain_key,
            industry=industry,
            website=website,
            created_at=now,
            updated_at=now,
        )
        created = True
    else:
        changes: dict[str, Any] = {
            k: v
            for k, v in {"domain": domain_key, "industry": industry, "website": website}.items()
            if v is not None
        }
        if name.lower() != row.name_key:  # a case-only difference keeps the stored spelling
            changes.update(name=name, name_key=name.lower())
        if changes:
            conn.execute(
                update(crm_companies)
                .where(crm_companies.c.id == row.id)
                .values(**changes, updated_at=now)
            )
        new_id, created = row.id, False
    return conn.execute(select(crm_companies).where(crm_companies.c.id == new_id)).one(), created


def _company_id_for(conn: Connection, name: str) -> int:
    """The company a contact or deal names (by name or domain), created if new."""
    row = _find_company(conn, name)
    return row.id if row is not None else _upsert_company(conn, name)[0].id


def _targets(
    conn: Connection, contact_email: str | None, company: str | None, deal_id: int | None
) -> dict[str, int | None]:
    """Resolve what a note or activity is about; each named target must exist."""
    if not (contact_email or company or deal_id is not None):
        raise ActionError("say what this is about: give contact_email, company or deal_id")
    contact = _require_contact(conn, contact_email) if contact_email else None
    company_row = _require_company(conn, company) if company else None
    deal = _require_deal(conn, deal_id) if deal_id is not None else None
    company_id = company_row.id if company_row is not None else None
    if company_id is None and contact is not None:
        company_id = contact.company_id
    if company_id is None and deal is not None:
        company_id = deal.company_id
    return {
        "contact_id": contact.id if contact is not None else None,
        "company_id": company_id,
        "deal_id": deal.id if deal is not None else None,
    }


def _stages(ctx: ActionContext) -> tuple[str, ...]:
    configured = _settings(ctx).raw.get("crm", {}).get("stages")
    if configured and isinstance(configured, list):
        return tuple(str(s).strip().lower() for s in configured)
    return DEFAULT_STAGES


def _check_stage(ctx: ActionContext, stage: str) -> str:
    value = stage.strip().lower()
    allowed = _stages(ctx)
    if value not in allowed:
        raise ActionError(
            f"unknown deal stage {stage!r}; use one of {', '.join(allowed)} "
            "(or set [crm] stages in openlam.toml)"
        )
    return value


def _like(query: str) -> str:
    escaped = query.strip().lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _verify_row(table: Table) -> Callable[[dict[str, Any], Any, ActionContext], str | None]:
    def verify(args: dict[str, Any], output: Any, ctx: ActionContext) -> str | None:
        with _tx(ctx) as conn:
            found = conn.execute(select(table.c.id).where(table.c.id == output["id"])).first()
        return None if found else f"{table.name} row {output['id']} is not in the database"

    return verify


# --- contacts ------------------------------------------------------------------------


@action("crm.contact_upsert", risk=Risk.write, idempotent=True, verify=_verify_row(crm_contacts))
def contact_upsert(
    ctx: ActionContext,
    email: str,
    name: str | None = None,
    phone: str | None = None,
    title: str | None = None,
    company: str | None = None,
    tags: list[str] | None = None,
) -> ContactUpserted:
    """Create a contact, or update the one with this email (matched case-insensitively).

    Only the fields given are changed; tags are added to the existing ones. A company
    named here is created if the CRM does not know it yet.

    Args:
        email: The contact's email address; the key that deduplicates contacts.
        name: Full name.
        phone: Phone number.
        title: Job title.
        company: Company name; linked, and created if new.
        tags: Labels to add, e.g. ["customer", "newsletter"].
    """
    key = _email_key(email)
    address = parseaddr(email.strip())[1].strip()

    def run() -> ContactUpserted:
        with _tx(ctx) as conn:
            company_id = _company_id_for(conn, company) if company else None
            row = conn.execute(select(crm_contacts).where(crm_contacts.c.email_key == key)).first()
            now = _now()
            if row is None:
                new_id = _insert(
                    conn,
                    crm_contacts,
                    email=address,
                    email_key=key,
                    name=name,
                    phone=phone,
                    title=title,
                    company_id=company_id,
                    tags=sorted(set(tags or [])),
                    created_at=now,
                    updated_at=now,
                )
                created = True
            else:
                changes: dict[str, Any] = {
                    k: v
                    for k, v in {
                        "name": name,
                        "phone": phone,
                        "title": title,
                        "company_id": company_id,
                    }.items()
                    if v is not None
                }
                if tags:
                    changes["tags"] = sorted(set(row.tags or []) | set(tags))
                if changes:
                    conn.execute(
                        update(crm_contacts)
                        .where(crm_contacts.c.id == row.id)
                        .values(**changes, updated_at=now)
                    )
                new_id, created = row.id, False
            fresh = conn.execute(select(crm_contacts).where(crm_contacts.c.id == new_id)).one()
            return {**_contact(conn, fresh), "created": created}  # type: ignore[typeddict-item]

    return _retry_on_conflict(run)


@action("crm.contact_get", risk=Risk.read, idempotent=True)
def contact_get(
    ctx: ActionContext, email: str | None = None, id: int | None = None
) -> ContactDetail:
    """Look up one contact with their company, deals, latest notes and activities.

    Args:
        email: The contact's email address (case-insensitive).
        id: The contact's id, instead of the email.
    """
    if email is None and id is None:
        raise ActionError("give the contact's email or id")
    with _tx(ctx) as conn:
        if email is not None:
            row = _require_contact(conn, email)
        else:
            row = conn.execute(select(crm_contacts).where(crm_contacts.c.id == id)).first()
            if row is None:
                raise ActionError(f"no CRM contact with id {id}; find it with crm.contact_find")
        deals = conn.execute(
            select(crm_deals)
            .where(crm_deals.c.contact_id == row.id)
            .order_by(crm_deals.c.id.desc())
            .limit(50)
        ).all()
        notes = conn.execute(
            select(crm_notes)
            .where(crm_notes.c.contact_id == row.id)
            .order_by(crm_notes.c.id.desc())
            .limit(20)
        ).all()
        acts = conn.execute(
            select(crm_activities)
            .where(crm_activities.c.contact_id == row.id)
            .order_by(crm_activities.c.occurred_at.desc(), crm_activities.c.id.desc())
            .limit(20)
        ).all()
        return {
            **_contact(conn, row),  # type: ignore[typeddict-item]
            "deals": [_deal(conn, d) for d in deals],
            "notes": [_note(n) for n in notes],
            "activities": [_activity(a) for a in acts],
        }


@action("crm.contact_find", risk=Risk.read, idempotent=True)
def contact_find(ctx: ActionContext, query: str, limit: int = 20) -> ContactList:
    """Find contacts whose name, email, title or company contains the text.

    Args:
        query: Text to look for, case-insensitive, e.g. "acme" or "jane".
        limit: At most this many contacts.
    """
    pattern = _like(query)
    with _tx(ctx) as conn:
        rows = conn.execute(
            select(crm_contacts)
            .outerjoin(crm_companies, crm_contacts.c.company_id == crm_companies.c.id)
            .where(
                or_(
                    crm_contacts.c.email_key.like(pattern, escape="\\"),
                    func.lower(crm_contacts.c.name).like(pattern, escape="\\"),
                    func.lower(crm_contacts.c.title).like(pattern, escape="\\"),
                    crm_companies.c.name_key.like(pattern, escape="\\"),
                )
            )
            .order_by(crm_contacts.c.name, crm_contacts.c.id)
            .limit(max(1, limit))
        ).all()
        return {"contacts": [_contact(conn, r) for r in rows]}


# --- companies -----------------------------------------------------------------------


@action("crm.company_upsert", risk=Risk.write, idempotent=True, verify=_verify_row(crm_companies))
def company_upsert(
    ctx: ActionContext,
    name: str,
    domain: str | None = None,
    industry: str | None = None,
    website: str | None = None,
) -> CompanyUpserted:
    """Create a company, or update the one with this domain or (case-insensitive) name.

    Args:
        name: Company name.
        domain: Web domain, e.g. acme.com; the preferred key for deduplication.
        industry: Industry, e.g. "logistics".
        website: Website address.
    """

    def run() -> CompanyUpserted:
        with _tx(ctx) as conn:
            row, created = _upsert_company(conn, name, domain, industry, website)
            return {**_company(row), "created": created}  # type: ignore[typeddict-item]

    return _retry_on_conflict(run)


@action("crm.company_get", risk=Risk.read, idempotent=True)
def company_get(ctx: ActionContext, name: str) -> CompanyDetail:
    """Look up one company with its contacts, deals, latest notes and activities.

    Args:
        name: Company name (case-insensitive) or its domain.
    """
    with _tx(ctx) as conn:
        row = _require_company(conn, name)
        contacts = conn.execute(
            select(crm_contacts)
            .where(crm_contacts.c.company_id == row.id)
            .order_by(crm_contacts.c.name)
            .limit(100)
        ).all()
        deals = conn.execute(
            select(crm_deals)
            .where(crm_deals.c.company_id == row.id)
            .order_by(crm_deals.c.id.desc())
            .limit(50)
        ).all()
        notes = conn.execute(
            select(crm_notes)
            .where(crm_notes.c.company_id == row.id)
            .order_by(crm_notes.c.id.desc())
            .limit(20)
        ).all()
        acts = conn.execute(
            select(crm_activities)
            .where(crm_activities.c.company_id == row.id)
            .order_by(crm_activities.c.occurred_at.desc(), crm_activities.c.id.desc())
            .limit(20)
        ).all()
        return {
            **_company(row),  # type: ignore[typeddict-item]
            "contacts": [_contact(conn, c) for c in contacts],
            "deals": [_deal(conn, d) for d in deals],
            "notes": [_note(n) for n in notes],
            "activities": [_activity(a) for a in acts],
        }


# --- deals -----------------------------------------------------------------------------


@action("crm.deal_create", risk=Risk.write, idempotent=True, verify=_verify_row(crm_deals))
def deal_create(
    ctx: ActionContext,
    title: str,
    company: str | None = None,
    contact_email: str | None = None,
    amount: float | None = None,
    currency: str | None = None,
    stage: str | None = None,
) -> Deal:
    """Open a deal. A retried step returns the deal it already created.

    Args:
        title: What is being sold, e.g. "Acme — annual plan".
        company: Company name; created if new.
        contact_email: The main contact's email; the contact must exist.
        amount: Expected value.
        currency: ISO 4217 code, e.g. EUR.
        stage: Initial stage (default: the first configured stage, "lead").
    """
    initial = _check_stage(ctx, stage) if stage else _stages(ctx)[0]
    if currency is not None and not re.fullmatch(r"[A-Za-z]{3}", currency.strip()):
        raise ActionError(f"currency {currency!r} is not an ISO 4217 code like EUR or USD")
    if amount is not None and amount < 0:
        raise ActionError(f"amount {amount} is negative; a deal's value is zero or more")

    def run() -> Deal:
        with _tx(ctx) as conn:
            done = conn.execute(
                select(crm_deals).where(crm_deals.c.idempotency_key == ctx.idempotency_key)
            ).first()
            if done is not None:
                return _deal(conn, done)
            contact = _require_contact(conn, contact_email) if contact_email else None
            company_id = _company_id_for(conn, company) if company else None
            if company_id is None and contact is not None:
                company_id = contact.company_id
            now = _now()
            new_id = _insert(
                conn,
                crm_deals,
                title=title.strip(),
                company_id=company_id,
                contact_id=contact.id if contact is not None else None,
                amount=amount,
                currency=currency.strip().upper() if currency else None,
                stage=initial,
                idempotency_key=ctx.idempotency_key or None,
                created_at=now,
                updated_at=now,
                closed_at=now if initial in CLOSED_STAGES else None,
            )
            return _deal(
                conn, conn.execute(select(crm_deals).where(crm_deals.c.id == new_id)).one()
            )

    return _retry_on_conflict(run)


@action("crm.deal_update_stage", risk=Risk.write, idempotent=True, verify=_verify_row(crm_deals))
def deal_update_stage(
    ctx: ActionContext, deal_id: int, stage: str, note: str | None = None
) -> DealStageChanged:
    """Move a deal to another stage; the change is recorded as an activity.

    Args:
        deal_id: The deal's id.
        stage: The new stage, e.g. proposal, won or lost.
        note: Why, kept with the recorded activity.
    """
    new_stage = _check_stage(ctx, stage)
    with _tx(ctx) as conn:
        row = _require_deal(conn, deal_id)
        previous = row.stage
        if previous != new_stage:
            now = _now()
            conn.execute(
                update(crm_deals)
                .where(crm_deals.c.id == deal_id)
                .values(
                    stage=new_stage,
                    updated_at=now,
                    closed_at=now if new_stage in CLOSED_STAGES else None,
                )
            )
            summary = f"stage {previous} → {new_stage}" + (f": {note}" if note else "")
            _insert(
                conn,
                crm_activities,
                kind="stage_change",
                summary=summary,
                contact_id=row.contact_id,
                company_id=row.company_id,
                deal_id=deal_id,
                run_id=ctx.run_id or None,
                occurred_at=now,
                created_at=now,
            )
        fresh = conn.execute(select(crm_deals).where(crm_deals.c.id == deal_id)).one()
        return {**_deal(conn, fresh), "previous_stage": previous}  # type: ignore[typeddict-item]


@action("crm.deal_list", risk=Risk.read, idempotent=True)
def deal_list(
    ctx: ActionContext, stage: str | None = None, company: str | None = None, limit: int = 50
) -> DealList:
    """List deals, newest first, optionally only one stage or one company's.

    Args:
        stage: Only deals in this stage.
        company: Only this company's deals (name or domain).
        limit: At most this many deals.
    """
    with _tx(ctx) as conn:
        query = select(crm_deals).order_by(crm_deals.c.id.desc()).limit(max(1, limit))
        if stage:
            query = query.where(crm_deals.c.stage == _check_stage(ctx, stage))
        if company:
            query = query.where(crm_deals.c.company_id == _require_company(conn, company).id)
        return {"deals": [_deal(conn, d) for d in conn.execute(query).all()]}


# --- notes and activities --------------------------------------------------------------


@action("crm.note_add", risk=Risk.write, idempotent=True, verify=_verify_row(crm_notes))
def note_add(
    ctx: ActionContext,
    body: str,
    contact_email: str | None = None,
    company: str | None = None,
    deal_id: int | None = None,
) -> Note:
    """Attach a note to a contact, a company or a deal (at least one).

    Args:
        body: The note's text.
        contact_email: The contact it is about.
        company: The company it is about (name or domain).
        deal_id: The deal it is about.
    """
    if not body.strip():
        raise ActionError("the note is empty; give its text in body")

    def run() -> Note:
        with _tx(ctx) as conn:
            done = conn.execute(
                select(crm_notes).where(crm_notes.c.idempotency_key == ctx.idempotency_key)
            ).first()
            if done is not None:
                return _note(done)
            targets = _targets(conn, contact_email, company, deal_id)
            new_id = _insert(
                conn,
                crm_notes,
                body=body,
                **targets,
                run_id=ctx.run_id or None,
                idempotency_key=ctx.idempotency_key or None,
                created_at=_now(),
            )
            return _note(conn.execute(select(crm_notes).where(crm_notes.c.id == new_id)).one())

    return _retry_on_conflict(run)


ActivityKind = Literal["email", "call", "meeting", "task", "message", "document", "other"]


@action("crm.activity_log", risk=Risk.write, idempotent=True, verify=_verify_row(crm_activities))
def activity_log(
    ctx: ActionContext,
    kind: ActivityKind,
    summary: str,
    contact_email: str | None = None,
    company: str | None = None,
    deal_id: int | None = None,
    occurred_at: datetime | None = None,
) -> Activity:
    """Record something that happened (an email sent, a call, a meeting) on the timeline of
    a contact, company or deal. A retried step returns the activity it already recorded.

    Args:
        kind: What kind of activity.
        summary: One line on what happened, e.g. "Sent the Q3 brief (brief.pdf)".
        contact_email: The contact involved.
        company: The company involved (name or domain).
        deal_id: The deal involved.
        occurred_at: When it happened (ISO 8601); default now.
    """
    if not summary.strip():
        raise ActionError("the activity needs a summary of what happened")
    when = occurred_at or _now()
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)

    def run() -> Activity:
        with _tx(ctx) as conn:
            done = conn.execute(
                select(crm_activities).where(
                    crm_activities.c.idempotency_key == ctx.idempotency_key
                )
            ).first()
            if done is not None:
                return _activity(done)
            targets = _targets(conn, contact_email, company, deal_id)
            new_id = _insert(
                conn,
                crm_activities,
                kind=kind,
                summary=summary.strip(),
                **targets,
                run_id=ctx.run_id or None,
                idempotency_key=ctx.idempotency_key or None,
                occurred_at=when.astimezone(UTC),
                created_at=_now(),
            )
            return _activity(
                conn.execute(select(crm_activities).where(crm_activities.c.id == new_id)).one()
            )

    return _retry_on_conflict(run)


# --- search ----------------------------------------------------------------------------


@action("crm.search", risk=Risk.read, idempotent=True)
def search(ctx: ActionContext, query: str, limit: int = 20) -> SearchResult:
    """Search the whole CRM — contacts, companies, deals, notes and activities — for text.

    Args:
        query: Text to look for, case-insensitive.
        limit: At most this many results of each kind.
    """
    if not query.strip():
        raise ActionError("the search query is empty")
    pattern, n = _like(query), max(1, limit)

    def has(column: Any) -> Any:
        return func.lower(column).like(pattern, escape="\\")

    hits: list[SearchHit] = []
    try:
        with _tx(ctx) as conn:
            for r in conn.execute(
                select(crm_contacts)
                .where(
                    or_(
                        has(crm_contacts.c.email),
                        has(crm_contacts.c.name),
                        has(crm_contacts.c.title),
                        has(crm_contacts.c.phone),
                    )
                )
                .limit(n)
            ):
                hits.append(
                    {"type": "contact", "id": r.id, "title": r.name or r.email, "detail": r.email}
                )
            for r in conn.execute(
                select(crm_companies)
                .where(
                    or_(
                        has(crm_companies.c.name),
                        has(crm_companies.c.domain),
                        has(crm_companies.c.industry),
                    )
                )
                .limit(n)
            ):
                hits.append(
                    {
                        "type": "company",
                        "id": r.id,
                        "title": r.name,
                        "detail": r.domain or r.industry or "",
                    }
                )
            for r in conn.execute(select(crm_deals).where(has(crm_deals.c.title)).limit(n)):
                hits.append(
                    {"type": "deal", "id": r.id, "title": r.title, "detail": f"stage {r.stage}"}
                )
            for r in conn.execute(
                select(crm_notes)
                .where(has(crm_notes.c.body))
                .order_by(crm_notes.c.id.desc())
                .limit(n)
            ):
                hits.append(
                    {
                        "type": "note",
                        "id": r.id,
                        "title": _snippet(r.body, query),
                        "detail": _iso(r.created_at) or "",
                    }
                )
            for r in conn.execute(
                select(crm_activities)
                .where(has(crm_activities.c.summary))
                .order_by(crm_activities.c.id.desc())
                .limit(n)
            ):
                hits.append(
                    {
                        "type": "activity",
                        "id": r.id,
                        "title": _snippet(r.summary, query),
                        "detail": f"{r.kind} {_iso(r.occurred_at)}",
                    }
                )
    except SQLAlchemyError as exc:  # pragma: no cover - surfaced as a clear failure
        raise ActionError(f"CRM search failed: {exc}") from None
    return {"query": query, "results": hits}


def _snippet(text: str, query: str, width: int = 120) -> str:
    at = text.lower().find(query.strip().lower())
    start = max(0, at - width // 3) if at >= 0 else 0
    piece = text[start : start + width].replace("\n", " ")
    return ("…" if start else "") + piece + ("…" if start + width < len(text) else "")
