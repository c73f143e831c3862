"""crm: OpenLAM's own CRM on the project database — SQLite in the workspace and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from openlam.actions.registry import load_plugins
from openlam.actions.spec import ActionContext
from openlam.errors import ActionError
from openlam.memory.engines import engine_for
from tests.fakes.action_ctx import action_context

REGISTRY = load_plugins()


async def call(action_name: str, ctx: ActionContext, /, **args: Any) -> Any:
    """Call an action as the loop does (arguments validated by its schema) and check its
    effect with its verify function when it has one."""
    spec = REGISTRY.get(action_name)
    assert spec is not None, f"{action_name} is not registered"
    output = await spec.call(ctx, args)
    if spec.verify is not None:
        assert spec.verify(args, output, ctx) is None
    return output


def _pg_up() -> str | None:
    import psycopg

    try:
        psycopg.connect("postgresql://127.0.0.1:5432/test", connect_timeout=3).close()
    except psycopg.Error as exc:
        return str(exc).strip()
    return None


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, workspace: Path) -> Iterator[str]:
    """The project database: the workspace's SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield ""
        return
    down = _pg_up()
    if down:
        pytest.skip(f"PostgreSQL at 127.0.0.1:5432 is not reachable ({down})")
    url = request.getfixturevalue("pg_url")
    yield url
    engine_for(url).dispose()  # let the database be dropped


def ctx_for(workspace: Path, db: str, step: str = "s1", toml: str = "") -> ActionContext:
    ctx = action_context(workspace, toml, step_id=step)
    if db:
        ctx.settings = ctx.settings.with_overrides(database_url=db)
    return ctx


async def test_contacts_are_deduplicated_by_email_case_insensitively(
    workspace: Path, db: str
) -> None:
    ctx = ctx_for(workspace, db)
    first = await call(
        "crm.contact_upsert",
        ctx,
        email="Jane.Roe@Example.com",
        name="Jane Roe",
        company="Acme",
        tags=["lead"],
    )
    second = await call(
        "crm.contact_upsert", ctx, email="  jane.roe@EXAMPLE.COM ", title="CTO", tags=["newsletter"]
    )
    assert first["created"] is True and second["created"] is False
    assert second["id"] == first["id"]
    assert second["name"] == "Jane Roe"  # not given the second time: kept
    assert second["title"] == "CTO"
    assert second["company"] == "Acme"
    assert second["tags"] == ["lead", "newsletter"]
    found = await call("crm.contact_find", ctx, query="ROE")
    assert [c["id"] for c in found["contacts"]] == [first["id"]]
    by_company = await call("crm.contact_find", ctx, query="acme")
    assert [c["email"] for c in by_company["contacts"]] == ["Jane.Roe@Example.com"]

    with pytest.raises(ActionError, match="not an email address"):
        await call("crm.contact_upsert", ctx, email="jane at example")
    with pytest.raises(ActionError, match=r"no CRM contact with email nobody@example\.com"):
        await call("crm.contact_get", ctx, email="nobody@example.com")


async def test_companies_match_by_domain_then_name(workspace: Path, db: str) -> None:
    ctx = ctx_for(workspace, db)
    made = await call("crm.company_upsert", ctx, name="Globex", domain="https://www.globex.com/")
    assert made["created"] and made["domain"] == "globex.com"
    renamed = await call(
        "crm.company_upsert", ctx, name="Globex Corporation", domain="globex.com", industry="energy"
    )
    assert renamed["id"] == made["id"] and not renamed["created"]
    assert renamed["name"] == "Globex Corporation" and renamed["industry"] == "energy"
    same = await call("crm.company_upsert", ctx, name="GLOBEX CORPORATION")
    assert same["id"] == made["id"] and same["name"] == "Globex Corporation"

    await call(
        "crm.contact_upsert",
        ctx,
        email="hank@globex.com",
        name="Hank",
        company="globex corporation",
    )
    detail = await call("crm.company_get", ctx, name="globex.com")
    assert detail["name"] == "Globex Corporation"
    assert [c["email"] for c in detail["contacts"]] == ["hank@globex.com"]
    with pytest.raises(ActionError, match="no CRM company named 'Initech'"):
        await call("crm.company_get", ctx, name="Initech")


async def test_deals_move_through_stages_and_record_the_change(workspace: Path, db: str) -> None:
    ctx = ctx_for(workspace, db)
    await call("crm.contact_upsert", ctx, email="jane@acme.com", company="Acme")
    deal = await call(
        "crm.deal_create",
        ctx,
        title="Acme — annual plan",
        amount=12000.5,
        currency="eur",
        contact_email="JANE@acme.com",
    )
    assert deal["stage"] == "lead" and deal["company"] == "Acme"
    assert deal["amount"] == 12000.5 and deal["currency"] == "EUR"
    assert deal["contact_email"] == "jane@acme.com"

    # The same step again (a retry or a recovered run) does not open a second deal.
    again = await call("crm.deal_create", ctx, title="Acme — annual plan", amount=12000.5)
    assert again["id"] == deal["id"]
    other = await call(
        "crm.deal_create",
        ctx_for(workspace, db, step="s2"),
        title="Acme — pilot",
        company="Acme",
        stage="qualified",
    )
    assert other["id"] != deal["id"] and other["stage"] == "qualified"

    moved = await call(
        "crm.deal_update_stage", ctx, deal_id=deal["id"], stage="Won", note="signed today"
    )
    assert moved["previous_stage"] == "lead" and moved["stage"] == "won"
    assert moved["closed_at"] is not None
    listed = await call("crm.deal_list", ctx, stage="won")
    assert [d["id"] for d in listed["deals"]] == [deal["id"]]
    by_company = await call("crm.deal_list", ctx, company="acme")
    assert {d["id"] for d in by_company["deals"]} == {deal["id"], other["id"]}

    contact = await call("crm.contact_get", ctx, email="jane@acme.com")
    changes = [a for a in contact["activities"] if a["kind"] == "stage_change"]
    assert len(changes) == 1 and changes[0]["summary"] == "stage lead → won: signed today"
    assert changes[0]["deal_id"] == deal["id"] and changes[0]["run_id"] == "run-1"

    with pytest.raises(ActionError, match=r"unknown deal stage 'signed'.*lead, qualified"):
        await call("crm.deal_update_stage", ctx, deal_id=deal["id"], stage="signed")
    with pytest.raises(ActionError, match="no CRM deal with id 9999"):
        await call("crm.deal_update_stage", ctx, deal_id=9999, stage="won")
    with pytest.raises(ActionError, match=r"no CRM contact with email ghost@acme\.com"):
        await call(
            "crm.deal_create",
            ctx_for(workspace, db, step="s3"),
            title="x",
            contact_email="ghost@acme.com",
        )


async def test_stages_come_from_the_configuration(workspace: Path, db: str) -> None:
    ctx = ctx_for(workspace, db, toml='[crm]\nstages = ["new", "talking", "won", "lost"]\n')
    deal = await call("crm.deal_create", ctx, title="Configured")
    assert deal["stage"] == "new"
    with pytest.raises(ActionError, match="use one of new, talking, won, lost"):
        await call("crm.deal_update_stage", ctx, deal_id=deal["id"], stage="proposal")


async def test_notes_and_activities_are_attached_once_per_step(workspace: Path, db: str) -> None:
    ctx = ctx_for(workspace, db)
    contact = await call("crm.contact_upsert", ctx, email="ann@initech.com", company="Initech")
    note = await call(
        "crm.note_add",
        ctx_for(workspace, db, step="n1"),
        body="Prefers calls after 3pm",
        contact_email="ann@initech.com",
    )
    retry = await call(
        "crm.note_add",
        ctx_for(workspace, db, step="n1"),
        body="Prefers calls after 3pm",
        contact_email="ann@initech.com",
    )
    assert retry["id"] == note["id"]
    assert note["contact_id"] == contact["id"]
    assert note["company_id"] == contact["company_id"]  # inherited from the contact

    act = await call(
        "crm.activity_log",
        ctx_for(workspace, db, step="a1"),
        kind="email",
        summary="Sent the brief (brief.pdf)",
        contact_email="ann@initech.com",
        occurred_at="2026-11-02T09:30:00+01:00",
    )
    assert act["occurred_at"].startswith("2026-11-02T08:30:00")
    await call(
        "crm.activity_log",
        ctx_for(workspace, db, step="a1"),
        kind="email",
        summary="Sent the brief (brief.pdf)",
        contact_email="ann@initech.com",
    )
    detail = await call("crm.contact_get", ctx, email="ann@initech.com")
    assert [n["body"] for n in detail["notes"]] == ["Prefers calls after 3pm"]
    assert [(a["kind"], a["summary"]) for a in detail["activities"]] == [
        ("email", "Sent the brief (brief.pdf)")
    ]
    company = await call("crm.company_get", ctx, name="initech")
    assert [a["id"] for a in company["activities"]] == [act["id"]]

    with pytest.raises(ActionError, match="give contact_email, company or deal_id"):
        await call("crm.note_add", ctx_for(workspace, db, step="n2"), body="orphan")
    with pytest.raises(ActionError, match=r"no CRM contact with email bob@initech\.com"):
        await call(
            "crm.activity_log",
            ctx_for(workspace, db, step="a2"),
            kind="call",
            summary="called",
            contact_email="bob@initech.com",
        )
    with pytest.raises(Exception, match="kind"):  # the schema names the allowed kinds
        await call(
            "crm.activity_log", ctx, kind="telepathy", summary="x", contact_email="ann@initech.com"
        )


async def test_search_spans_the_whole_crm_and_treats_wildcards_as_text(
    workspace: Path, db: str
) -> None:
    ctx = ctx_for(workspace, db)
    await call(
        "crm.contact_upsert", ctx, email="lee@umbrella.com", name="Lee Chen", company="Umbrella"
    )
    await call("crm.company_upsert", ctx, name="Umbrella", industry="pharma")
    deal = await call("crm.deal_create", ctx, title="Umbrella 100% rollout", company="Umbrella")
    await call(
        "crm.note_add",
        ctx_for(workspace, db, step="n"),
        body="Umbrella wants SSO",
        company="Umbrella",
    )
    await call(
        "crm.activity_log",
        ctx_for(workspace, db, step="a"),
        kind="meeting",
        summary="Kick-off with Umbrella",
        deal_id=deal["id"],
    )

    hits = (await call("crm.search", ctx, query="umbrella"))["results"]
    assert {h["type"] for h in hits} == {"contact", "company", "deal", "note", "activity"}
    assert next(h for h in hits if h["type"] == "deal")["id"] == deal["id"]

    percent = (await call("crm.search", ctx, query="100%"))["results"]
    assert [h["type"] for h in percent] == ["deal"]
    assert (await call("crm.search", ctx, query="%"))["results"] == percent
    assert (await call("crm.search", ctx, query="_"))["results"] == []
    assert (await call("crm.search", ctx, query="nothing like this"))["results"] == []


async def test_tables_live_in_the_project_database(workspace: Path) -> None:
    ctx = ctx_for(workspace, "")
    await call("crm.contact_upsert", ctx, email="x@y.com")
    import sqlite3

    db_file = workspace / ".openlam" / "openlam.db"
    with sqlite3.connect(db_file) as conn:
        names = {r[0] for r in conn.execute("select name from sqlite_master where type='table'")}
    assert {"crm_contacts", "crm_companies", "crm_deals", "crm_notes", "crm_activities"} <= names
