"""The CRM actions: contacts, companies, deals, notes, activities and search."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.utils import parseaddr
from typing import Any, Literal

from sqlalchemy import (
    func,
    or_,
    select,
    update,
)
from sqlalchemy.exc import SQLAlchemyError

from openlam.actions.builtin.crm.config import CLOSED_STAGES, check_stage, stages_of
from openlam.actions.builtin.crm.records import (
    Activity,
    CompanyDetail,
    CompanyUpserted,
    ContactDetail,
    ContactList,
    ContactUpserted,
    Deal,
    DealList,
    DealStageChanged,
    Note,
    SearchHit,
    SearchResult,
    activity_row,
    company_id_for,
    company_row,
    contact_row,
    deal_row,
    email_key_of,
    like_pattern,
    note_row,
    require_company,
    require_contact,
    require_deal,
    targets_of,
    upsert_company,
    verify_row,
)
from openlam.actions.builtin.crm.storage import (
    crm_activities,
    crm_companies,
    crm_contacts,
    crm_deals,
    crm_notes,
    insert_row,
    iso_time,
    retry_on_conflict,
    transaction,
    utc_now,
)
from openlam.actions.spec import ActionContext, Risk, action
from openlam.errors import ActionError


@action("crm.contact_upsert", risk=Risk.write, idempotent=True, verify=verify_row(crm_contacts))
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
    key = email_key_of(email)
    address = parseaddr(email.strip())[1].strip()

    def run() -> ContactUpserted:
        with transaction(ctx) as conn:
            company_id = company_id_for(conn, company) if company else None
            row = conn.execute(select(crm_contacts).where(crm_contacts.c.email_key == key)).first()
            now = utc_now()
            if row is None:
                new_id = insert_row(
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
            return {**contact_row(conn, fresh), "created": created}  # type: ignore[typeddict-item]

    return retry_on_conflict(run)


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
    with transaction(ctx) as conn:
        if email is not None:
            row = require_contact(conn, email)
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
            **contact_row(conn, row),  # type: ignore[typeddict-item]
            "deals": [deal_row(conn, d) for d in deals],
            "notes": [note_row(n) for n in notes],
            "activities": [activity_row(a) for a in acts],
        }


@action("crm.contact_find", risk=Risk.read, idempotent=True)
def contact_find(ctx: ActionContext, query: str, limit: int = 20) -> ContactList:
    """Find contacts whose name, email, title or company contains the text.

    Args:
        query: Text to look for, case-insensitive, e.g. "acme" or "jane".
        limit: At most this many contacts.
    """
    pattern = like_pattern(query)
    with transaction(ctx) as conn:
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
        return {"contacts": [contact_row(conn, r) for r in rows]}


@action("crm.company_upsert", risk=Risk.write, idempotent=True, verify=verify_row(crm_companies))
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
        with transaction(ctx) as conn:
            row, created = upsert_company(conn, name, domain, industry, website)
            return {**company_row(row), "created": created}  # type: ignore[typeddict-item]

    return retry_on_conflict(run)


@action("crm.company_get", risk=Risk.read, idempotent=True)
def company_get(ctx: ActionContext, name: str) -> CompanyDetail:
    """Look up one company with its contacts, deals, latest notes and activities.

    Args:
        name: Company name (case-insensitive) or its domain.
    """
    with transaction(ctx) as conn:
        row = require_company(conn, name)
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
            **company_row(row),  # type: ignore[typeddict-item]
            "contacts": [contact_row(conn, c) for c in contacts],
            "deals": [deal_row(conn, d) for d in deals],
            "notes": [note_row(n) for n in notes],
            "activities": [activity_row(a) for a in acts],
        }


@action("crm.deal_create", risk=Risk.write, idempotent=True, verify=verify_row(crm_deals))
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
    initial = check_stage(ctx, stage) if stage else stages_of(ctx)[0]
    if currency is not None and not re.fullmatch(r"[A-Za-z]{3}", currency.strip()):
        raise ActionError(f"currency {currency!r} is not an ISO 4217 code like EUR or USD")
    if amount is not None and amount < 0:
        raise ActionError(f"amount {amount} is negative; a deal's value is zero or more")

    def run() -> Deal:
        with transaction(ctx) as conn:
            done = conn.execute(
                select(crm_deals).where(crm_deals.c.idempotency_key == ctx.idempotency_key)
            ).first()
            if done is not None:
                return deal_row(conn, done)
            contact = require_contact(conn, contact_email) if contact_email else None
            company_id = company_id_for(conn, company) if company else None
            if company_id is None and contact is not None:
                company_id = contact.company_id
            now = utc_now()
            new_id = insert_row(
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
            return deal_row(
                conn, conn.execute(select(crm_deals).where(crm_deals.c.id == new_id)).one()
            )

    return retry_on_conflict(run)


@action("crm.deal_update_stage", risk=Risk.write, idempotent=True, verify=verify_row(crm_deals))
def deal_update_stage(
    ctx: ActionContext, deal_id: int, stage: str, note: str | None = None
) -> DealStageChanged:
    """Move a deal to another stage; the change is recorded as an activity.

    Args:
        deal_id: The deal's id.
        stage: The new stage, e.g. proposal, won or lost.
        note: Why, kept with the recorded activity.
    """
    new_stage = check_stage(ctx, stage)
    with transaction(ctx) as conn:
        row = require_deal(conn, deal_id)
        previous = row.stage
        if previous != new_stage:
            now = utc_now()
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
            insert_row(
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
        return {**deal_row(conn, fresh), "previous_stage": previous}  # type: ignore[typeddict-item]


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
    with transaction(ctx) as conn:
        query = select(crm_deals).order_by(crm_deals.c.id.desc()).limit(max(1, limit))
        if stage:
            query = query.where(crm_deals.c.stage == check_stage(ctx, stage))
        if company:
            query = query.where(crm_deals.c.company_id == require_company(conn, company).id)
        return {"deals": [deal_row(conn, d) for d in conn.execute(query).all()]}


@action("crm.note_add", risk=Risk.write, idempotent=True, verify=verify_row(crm_notes))
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
        with transaction(ctx) as conn:
            done = conn.execute(
                select(crm_notes).where(crm_notes.c.idempotency_key == ctx.idempotency_key)
            ).first()
            if done is not None:
                return note_row(done)
            targets = targets_of(conn, contact_email, company, deal_id)
            new_id = insert_row(
                conn,
                crm_notes,
                body=body,
                **targets,
                run_id=ctx.run_id or None,
                idempotency_key=ctx.idempotency_key or None,
                created_at=utc_now(),
            )
            return note_row(conn.execute(select(crm_notes).where(crm_notes.c.id == new_id)).one())

    return retry_on_conflict(run)


ActivityKind = Literal["email", "call", "meeting", "task", "message", "document", "other"]


@action("crm.activity_log", risk=Risk.write, idempotent=True, verify=verify_row(crm_activities))
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
    when = occurred_at or utc_now()
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)

    def run() -> Activity:
        with transaction(ctx) as conn:
            done = conn.execute(
                select(crm_activities).where(
                    crm_activities.c.idempotency_key == ctx.idempotency_key
                )
            ).first()
            if done is not None:
                return activity_row(done)
            targets = targets_of(conn, contact_email, company, deal_id)
            new_id = insert_row(
                conn,
                crm_activities,
                kind=kind,
                summary=summary.strip(),
                **targets,
                run_id=ctx.run_id or None,
                idempotency_key=ctx.idempotency_key or None,
                occurred_at=when.astimezone(UTC),
                created_at=utc_now(),
            )
            return activity_row(
                conn.execute(select(crm_activities).where(crm_activities.c.id == new_id)).one()
            )

    return retry_on_conflict(run)


@action("crm.search", risk=Risk.read, idempotent=True)
def search(ctx: ActionContext, query: str, limit: int = 20) -> SearchResult:
    """Search the whole CRM — contacts, companies, deals, notes and activities — for text.

    Args:
        query: Text to look for, case-insensitive.
        limit: At most this many results of each kind.
    """
    if not query.strip():
        raise ActionError("the search query is empty")
    pattern, n = like_pattern(query), max(1, limit)

    def has(column: Any) -> Any:
        return func.lower(column).like(pattern, escape="\\")

    hits: list[SearchHit] = []
    try:
        with transaction(ctx) as conn:
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
                        "detail": iso_time(r.created_at) or "",
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
                        "detail": f"{r.kind} {iso_time(r.occurred_at)}",
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
