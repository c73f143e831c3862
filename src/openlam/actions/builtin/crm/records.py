"""CRM rows as the actions return them, and the lookups the actions share."""

from __future__ import annotations

import re
from collections.abc import Callable
from email.utils import parseaddr
from typing import Any, Literal

from sqlalchemy import (
    Connection,
    Table,
    select,
    update,
)
from typing_extensions import TypedDict

from openlam.actions.builtin.crm.storage import (
    crm_companies,
    crm_contacts,
    crm_deals,
    insert_row,
    iso_time,
    transaction,
    utc_now,
)
from openlam.actions.spec import ActionContext
from openlam.errors import ActionError


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


def _company_name(conn: Connection, company_id: int | None) -> str | None:
    if company_id is None:
        return None
    return conn.execute(
        select(crm_companies.c.name).where(crm_companies.c.id == company_id)
    ).scalar()


def company_row(row: Any) -> Company:
    return {
        "id": row.id,
        "name": row.name,
        "domain": row.domain,
        "industry": row.industry,
        "website": row.website,
        "created_at": iso_time(row.created_at),
        "updated_at": iso_time(row.updated_at),
    }


def contact_row(conn: Connection, row: Any) -> Contact:
    return {
        "id": row.id,
        "email": row.email,
        "name": row.name,
        "phone": row.phone,
        "title": row.title,
        "company": _company_name(conn, row.company_id),
        "company_id": row.company_id,
        "tags": list(row.tags or []),
        "created_at": iso_time(row.created_at),
        "updated_at": iso_time(row.updated_at),
    }


def deal_row(conn: Connection, row: Any) -> Deal:
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
        "created_at": iso_time(row.created_at),
        "updated_at": iso_time(row.updated_at),
        "closed_at": iso_time(row.closed_at),
    }


def note_row(row: Any) -> Note:
    return {
        "id": row.id,
        "body": row.body,
        "contact_id": row.contact_id,
        "company_id": row.company_id,
        "deal_id": row.deal_id,
        "run_id": row.run_id,
        "created_at": iso_time(row.created_at),
    }


def activity_row(row: Any) -> Activity:
    return {
        "id": row.id,
        "kind": row.kind,
        "summary": row.summary,
        "contact_id": row.contact_id,
        "company_id": row.company_id,
        "deal_id": row.deal_id,
        "run_id": row.run_id,
        "occurred_at": iso_time(row.occurred_at),
    }


def email_key_of(email: str) -> str:
    address = parseaddr(email.strip())[1].strip()
    if not re.fullmatch(r"[^@\s]+@[^@\s.]+(?:\.[^@\s.]+)+", address):  # linear: dots split
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


def require_contact(conn: Connection, email: str) -> Any:
    row = conn.execute(
        select(crm_contacts).where(crm_contacts.c.email_key == email_key_of(email))
    ).first()
    if row is None:
        raise ActionError(
            f"no CRM contact with email {email}; add it with crm.contact_upsert "
            "or look for it with crm.contact_find"
        )
    return row


def require_company(conn: Connection, name: str) -> Any:
    row = _find_company(conn, name)
    if row is None:
        raise ActionError(f"no CRM company named {name!r}; add it with crm.company_upsert")
    return row


def require_deal(conn: Connection, deal_id: int) -> Any:
    row = conn.execute(select(crm_deals).where(crm_deals.c.id == deal_id)).first()
    if row is None:
        raise ActionError(f"no CRM deal with id {deal_id}; list deals with crm.deal_list")
    return row


def upsert_company(
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
    now = utc_now()
    if row is None:
        new_id = insert_row(
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


def company_id_for(conn: Connection, name: str) -> int:
    """The company a contact or deal names (by name or domain), created if new."""
    row = _find_company(conn, name)
    return row.id if row is not None else upsert_company(conn, name)[0].id


def targets_of(
    conn: Connection, contact_email: str | None, company: str | None, deal_id: int | None
) -> dict[str, int | None]:
    """Resolve what a note or activity is about; each named target must exist."""
    if not (contact_email or company or deal_id is not None):
        raise ActionError("say what this is about: give contact_email, company or deal_id")
    contact = require_contact(conn, contact_email) if contact_email else None
    found_company = require_company(conn, company) if company else None
    deal = require_deal(conn, deal_id) if deal_id is not None else None
    company_id = found_company.id if found_company is not None else None
    if company_id is None and contact is not None:
        company_id = contact.company_id
    if company_id is None and deal is not None:
        company_id = deal.company_id
    return {
        "contact_id": contact.id if contact is not None else None,
        "company_id": company_id,
        "deal_id": deal.id if deal is not None else None,
    }


def like_pattern(query: str) -> str:
    escaped = query.strip().lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def verify_row(table: Table) -> Callable[[dict[str, Any], Any, ActionContext], str | None]:
    def verify(args: dict[str, Any], output: Any, ctx: ActionContext) -> str | None:
        with transaction(ctx) as conn:
            found = conn.execute(select(table.c.id).where(table.c.id == output["id"])).first()
        return None if found else f"{table.name} row {output['id']} is not in the database"

    return verify
