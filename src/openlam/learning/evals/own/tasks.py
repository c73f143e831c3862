"""The own suite's tasks: a goal, its ground-truth plan, and a checker of the end state.

Each checker reads the world the task acted on — files in the workspace, rows of the CRM
in the project database, messages the SMTP server accepted, tickets in the REST service,
the MCP server's store — and never the run's own report. ``{site}`` in a goal or plan is
the local site's address.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

from openlam.config import sqlite_url
from openlam.learning.evals.suite import Check

if TYPE_CHECKING:
    from openlam.learning.evals.own.peers import Mailbox, Site
    from openlam.loop.state import Outcome


@dataclass
class World:
    workspace: Path
    site: Site
    mailbox: Mailbox | None
    kv_file: Path
    outcome: Outcome

    def text(self, path: str) -> str | None:
        target = self.workspace / path
        return target.read_text(encoding="utf-8") if target.is_file() else None

    def rows(self, query: str) -> list[dict[str, Any]]:
        from openlam.memory.engines import engine_for

        url = sqlite_url(self.workspace / ".openlam" / "openlam.db")
        try:
            with engine_for(url).connect() as conn:
                return [dict(r._mapping) for r in conn.execute(sa.text(query))]
        except OperationalError:  # no CRM table: nothing was ever written to it
            return []

    def kv(self) -> dict[str, str]:
        return json.loads(self.kv_file.read_text()) if self.kv_file.exists() else {}


Checker = Callable[[World], Check]


@dataclass
class OwnTask:
    id: str
    split: str
    area: str
    goal: str
    steps: list[dict[str, Any]]
    check: Checker
    answer: str | None = None
    seed: dict[str, str] | None = None  # files written into the workspace first
    children: dict[str, list[dict[str, Any]]] | None = None  # delegated goal → its steps


def step(ident: str, action: str, **args: Any) -> dict[str, Any]:
    return {"id": ident, "action": action, "args": args}


def done(ok: bool, detail: str, deliverable: bool | None = None) -> Check:
    return Check(
        goal_done=ok, deliverable_correct=ok if deliverable is None else deliverable, detail=detail
    )


def file_is(path: str, expected: str) -> Checker:
    def check(w: World) -> Check:
        found = w.text(path)
        if found is None:
            return done(False, f"{path} does not exist")
        return done(found.strip() == expected.strip(), f"{path}: {found[:80]!r}")

    return check


def file_has(path: str, *needles: str) -> Checker:
    def check(w: World) -> Check:
        found = w.text(path)
        if found is None:
            return done(False, f"{path} does not exist")
        missing = [n for n in needles if n not in found]
        return done(not missing, f"{path} lacks {missing}" if missing else f"{path} has it all")

    return check


def every(*checks: Checker) -> Checker:
    def check(w: World) -> Check:
        found = [c(w) for c in checks]
        return Check(
            all(f.goal_done for f in found),
            all(f.deliverable_correct for f in found),
            "; ".join(f.detail for f in found),
        )

    return check


def row(query: str, **expected: Any) -> Checker:
    def check(w: World) -> Check:
        rows = w.rows(query)
        ok = any(all(r.get(k) == v for k, v in expected.items()) for r in rows)
        return done(ok, f"{len(rows)} row(s); want {expected}")

    return check


def mail(to: set[str], subject: str, body: str = "", attachment: str | None = None) -> Checker:
    def check(w: World) -> Check:
        got = w.mailbox.received() if w.mailbox else []
        for m in got:
            if set(m["to"]) == to and m["subject"] == subject:
                ok = body in m["body"] and (attachment is None or attachment in m["attachments"])
                return done(True, f"delivered to {sorted(to)}", ok)
        return done(False, f"no message {subject!r} to {sorted(to)} among {len(got)}")

    return check


def ticket(**expected: Any) -> Checker:
    def check(w: World) -> Check:
        ok = any(all(t.get(k) == v for k, v in expected.items()) for t in w.site.tickets)
        return done(ok, f"{len(w.site.tickets)} ticket(s); want {expected}")

    return check


def kv(key: str, value: str) -> Checker:
    def check(w: World) -> Check:
        found = w.kv()
        return done(found.get(key) == value, f"store holds {found}")

    return check


def answer_has(*needles: str) -> Checker:
    def check(w: World) -> Check:
        text = w.outcome.answer or ""
        ok = w.outcome.status.value == "completed" and all(n in text for n in needles)
        return done(ok, f"answer {text[:80]!r}")

    return check


def csv_is(path: str, rows: list[dict[str, str]]) -> Checker:
    def check(w: World) -> Check:
        found = w.text(path)
        if found is None:
            return done(False, f"{path} does not exist")
        got = list(csv.DictReader(io.StringIO(found)))
        return done(got == rows, f"{path}: {len(got)} row(s)")

    return check


def pdf_at(path: str) -> Checker:
    def check(w: World) -> Check:
        target = w.workspace / path
        ok = target.is_file() and target.read_bytes().startswith(b"%PDF")
        return done(ok, f"{path} {'is' if ok else 'is not'} a PDF")

    return check


PEOPLE = [{"name": "Ann Lee", "role": "engineer"}, {"name": "Bo Chen", "role": "designer"}]

TASKS: list[OwnTask] = [
    # -- files --------------------------------------------------------------------------
    OwnTask(
        "files-write",
        "dev",
        "files",
        "write 'Quarterly review on Friday' to notes/review.txt",
        [step("s1", "files.write", path="notes/review.txt", content="Quarterly review on Friday")],
        file_is("notes/review.txt", "Quarterly review on Friday"),
    ),
    OwnTask(
        "files-copy",
        "heldout",
        "files",
        "copy the text of seed/motto.txt to backup/motto.txt",
        [
            step("s1", "files.read", path="seed/motto.txt"),
            step("s2", "files.write", path="backup/motto.txt", content="${s1.output.text}"),
        ],
        file_is("backup/motto.txt", "Measure twice, cut once."),
        seed={"seed/motto.txt": "Measure twice, cut once.\n"},
    ),
    OwnTask(
        "files-two",
        "dev",
        "files",
        "write 'alpha' to a.txt and 'beta' to b.txt",
        [
            step("s1", "files.write", path="a.txt", content="alpha"),
            step("s2", "files.write", path="b.txt", content="beta"),
        ],
        every(file_is("a.txt", "alpha"), file_is("b.txt", "beta")),
    ),
    OwnTask(
        "files-draft",
        "heldout",
        "files",
        "save the text 'Draft 2 of the plan' as drafts/v2.txt",
        [step("s1", "files.write", path="drafts/v2.txt", content="Draft 2 of the plan")],
        file_is("drafts/v2.txt", "Draft 2 of the plan"),
    ),
    OwnTask(
        "files-todo",
        "dev",
        "files",
        "make a todo list todo.md with milk and eggs",
        [step("s1", "files.write", path="todo.md", content="- milk\n- eggs\n")],
        file_has("todo.md", "milk", "eggs"),
    ),
    # -- documents ----------------------------------------------------------------------
    OwnTask(
        "doc-markdown",
        "dev",
        "documents",
        "write a markdown report report.md titled 'Weekly report' saying sales rose 5%",
        [
            step(
                "s1",
                "documents.write_markdown",
                path="report.md",
                content="# Weekly report\n\nSales rose 5%.\n",
            )
        ],
        file_has("report.md", "# Weekly report", "5%"),
    ),
    OwnTask(
        "doc-csv",
        "heldout",
        "documents",
        "write people.csv with Ann Lee (engineer) and Bo Chen (designer), columns name and role",
        [step("s1", "documents.write_csv", path="people.csv", rows=PEOPLE)],
        csv_is("people.csv", PEOPLE),
    ),
    OwnTask(
        "doc-html",
        "dev",
        "documents",
        "make a web page index.html titled Welcome that says 'Hello, visitors'",
        [
            step(
                "s1",
                "documents.write_html",
                path="index.html",
                title="Welcome",
                content="Hello, visitors",
            )
        ],
        file_has("index.html", "<title>Welcome</title>", "Hello, visitors"),
    ),
    OwnTask(
        "doc-pdf",
        "heldout",
        "documents",
        "write a one-page PDF brief.pdf saying 'Launch on 3 March'",
        [
            step(
                "s1",
                "documents.write_pdf",
                path="brief.pdf",
                title="Brief",
                content="Launch on 3 March",
            )
        ],
        pdf_at("brief.pdf"),
    ),
    OwnTask(
        "doc-summary",
        "dev",
        "documents",
        "turn seed/data.txt into a markdown page summary.md under a heading 'Data'",
        [
            step("s1", "files.read", path="seed/data.txt"),
            step(
                "s2",
                "documents.write_markdown",
                path="summary.md",
                content="# Data\n\n${s1.output.text}",
            ),
        ],
        file_has("summary.md", "# Data", "42 widgets shipped"),
        seed={"seed/data.txt": "42 widgets shipped in May.\n"},
    ),
    # -- CRM ----------------------------------------------------------------------------
    OwnTask(
        "crm-contact",
        "dev",
        "crm",
        "add Jane Roe (jane@acme.test) as a contact in the CRM",
        [step("s1", "crm.contact_upsert", email="jane@acme.test", name="Jane Roe")],
        row("select name, email from crm_contacts", name="Jane Roe", email="jane@acme.test"),
    ),
    OwnTask(
        "crm-company",
        "heldout",
        "crm",
        "add the company Globex (globex.test) to the CRM",
        [step("s1", "crm.company_upsert", name="Globex", domain="globex.test")],
        row("select name, domain from crm_companies", name="Globex", domain="globex.test"),
    ),
    OwnTask(
        "crm-deal",
        "dev",
        "crm",
        "open a deal 'Anvil order' with Acme worth 5000 EUR",
        [
            step("s1", "crm.company_upsert", name="Acme"),
            step(
                "s2",
                "crm.deal_create",
                title="Anvil order",
                company="Acme",
                amount=5000,
                currency="EUR",
            ),
        ],
        row("select title, amount from crm_deals", title="Anvil order", amount=5000),
    ),
    OwnTask(
        "crm-note",
        "heldout",
        "crm",
        "add Bob Stone (bob@globex.test) to the CRM with the note 'Prefers email'",
        [
            step("s1", "crm.contact_upsert", email="bob@globex.test", name="Bob Stone"),
            step("s2", "crm.note_add", body="Prefers email", contact_email="bob@globex.test"),
        ],
        row(
            "select n.body, c.email from crm_notes n join crm_contacts c on n.contact_id = c.id",
            body="Prefers email",
            email="bob@globex.test",
        ),
    ),
    OwnTask(
        "crm-call",
        "dev",
        "crm",
        "log a call with carol@initech.test about renewal pricing in the CRM",
        [
            step("s1", "crm.contact_upsert", email="carol@initech.test"),
            step(
                "s2",
                "crm.activity_log",
                kind="call",
                summary="Renewal pricing",
                contact_email="carol@initech.test",
            ),
        ],
        row(
            "select a.kind, c.email from crm_activities a join crm_contacts c "
            "on a.contact_id = c.id",
            kind="call",
            email="carol@initech.test",
        ),
    ),
    OwnTask(
        "crm-won",
        "heldout",
        "crm",
        "open a deal 'Forge upgrade' and mark it won",
        [
            step("s1", "crm.deal_create", title="Forge upgrade"),
            step("s2", "crm.deal_update_stage", deal_id="${s1.output.id}", stage="won"),
        ],
        row("select title, stage from crm_deals", title="Forge upgrade", stage="won"),
    ),
    # -- email (a local SMTP server) ----------------------------------------------------
    OwnTask(
        "mail-send",
        "dev",
        "email",
        "email ann@example.com with the subject 'Meeting moved' saying it is now at 3 pm",
        [
            step(
                "s1",
                "email.send",
                to=["ann@example.com"],
                subject="Meeting moved",
                body="The meeting is now at 3 pm.",
            )
        ],
        mail({"ann@example.com"}, "Meeting moved", "3 pm"),
    ),
    OwnTask(
        "mail-two",
        "heldout",
        "email",
        "email ann@example.com and bo@example.com the subject 'Release 1.2' saying it shipped",
        [
            step(
                "s1",
                "email.send",
                to=["ann@example.com", "bo@example.com"],
                subject="Release 1.2",
                body="Release 1.2 has shipped.",
            )
        ],
        mail({"ann@example.com", "bo@example.com"}, "Release 1.2", "shipped"),
    ),
    OwnTask(
        "mail-attach",
        "dev",
        "email",
        "write minutes.md with 'Budget approved' and email it to cfo@example.com as 'Minutes'",
        [
            step(
                "s1",
                "documents.write_markdown",
                path="minutes.md",
                content="# Minutes\n\nBudget approved.\n",
            ),
            step(
                "s2",
                "email.send",
                to=["cfo@example.com"],
                subject="Minutes",
                body="The minutes are attached.",
                attachments=["minutes.md"],
            ),
        ],
        mail({"cfo@example.com"}, "Minutes", "attached", attachment="minutes.md"),
    ),
    OwnTask(
        "mail-from-file",
        "heldout",
        "email",
        "email the text of seed/notice.txt to staff@example.com with the subject 'Notice'",
        [
            step("s1", "files.read", path="seed/notice.txt"),
            step(
                "s2",
                "email.send",
                to=["staff@example.com"],
                subject="Notice",
                body="${s1.output.text}",
            ),
        ],
        mail({"staff@example.com"}, "Notice", "office closes at noon"),
        seed={"seed/notice.txt": "The office closes at noon on Friday.\n"},
    ),
    # -- web (the local site) -----------------------------------------------------------
    OwnTask(
        "web-about",
        "dev",
        "web",
        "save the page {site}/about.html as about.md",
        [
            step("s1", "web.fetch", url="{site}/about.html"),
            step("s2", "files.write", path="about.md", content="${s1.output.content}"),
        ],
        file_has("about.md", "since 1949"),
    ),
    OwnTask(
        "web-facts",
        "heldout",
        "web",
        "download {site}/facts.json to facts.json",
        [
            step("s1", "http.get", url="{site}/facts.json"),
            step("s2", "files.write", path="facts.json", content="${s1.output.text}"),
        ],
        file_has("facts.json", '"ceo": "Rosa Vidal"'),
    ),
    OwnTask(
        "web-pricing",
        "dev",
        "web",
        "save the prices on {site}/pricing.html to prices.md",
        [
            step("s1", "web.fetch", url="{site}/pricing.html"),
            step("s2", "files.write", path="prices.md", content="${s1.output.content}"),
        ],
        file_has("prices.md", "340 EUR", "120 EUR"),
    ),
    OwnTask(
        "web-ceo",
        "heldout",
        "web",
        "who is the CEO according to {site}/facts.json?",
        [step("s1", "http.get", url="{site}/facts.json")],
        answer_has("Rosa Vidal"),
        answer="${s1.output.text}",
    ),
    # -- OpenAPI (the site's tickets service, added as the source `tickets`) -------------
    OwnTask(
        "api-open",
        "dev",
        "openapi",
        "open a high-priority ticket 'Laptop battery swollen' in the tickets service",
        [step("s1", "tickets.create_ticket", title="Laptop battery swollen", priority="high")],
        ticket(title="Laptop battery swollen", priority="high", status="open"),
    ),
    OwnTask(
        "api-close",
        "heldout",
        "openapi",
        "close ticket 2 in the tickets service",
        [step("s1", "tickets.close_ticket", ticket_id=2)],
        ticket(id=2, status="closed"),
    ),
    OwnTask(
        "api-export",
        "dev",
        "openapi",
        "export every ticket of the tickets service to tickets.csv",
        [
            step("s1", "tickets.list_tickets"),
            step("s2", "documents.write_csv", path="tickets.csv", rows="${s1.output}"),
        ],
        file_has("tickets.csv", "Printer jam on floor 2", "VPN drops every hour"),
    ),
    # -- MCP (a stdio server added as the source `kv`) ----------------------------------
    OwnTask(
        "mcp-set",
        "dev",
        "mcp",
        "store 'March 3' under the key launch in the kv store",
        [step("s1", "kv.kv_set", key="launch", value="March 3")],
        kv("launch", "March 3"),
    ),
    OwnTask(
        "mcp-copy",
        "heldout",
        "mcp",
        "store the first line of seed/owner.txt under the key owner in the kv store",
        [
            step("s1", "files.read", path="seed/owner.txt"),
            step("s2", "kv.kv_set", key="owner", value="Rosa Vidal"),
        ],
        kv("owner", "Rosa Vidal"),
        seed={"seed/owner.txt": "Rosa Vidal\nsince 2019\n"},
    ),
    # -- delegation ---------------------------------------------------------------------
    OwnTask(
        "delegate-count",
        "dev",
        "delegation",
        "have the data analyst write 'rows: 12' to counts.txt",
        [step("d1", "delegate", agent="data_analyst", goal="write 'rows: 12' to counts.txt")],
        file_is("counts.txt", "rows: 12"),
        children={
            "write 'rows: 12' to counts.txt": [
                step("s1", "files.write", path="counts.txt", content="rows: 12")
            ]
        },
    ),
    OwnTask(
        "delegate-table",
        "heldout",
        "delegation",
        "have the data analyst write people.csv with Ann Lee (engineer) and Bo Chen (designer)",
        [
            step(
                "d1",
                "delegate",
                agent="data_analyst",
                goal="write people.csv with the columns name and role for Ann Lee, "
                "engineer, and Bo Chen, designer",
            )
        ],
        csv_is("people.csv", PEOPLE),
        children={
            "write people.csv with the columns name and role for Ann Lee, "
            "engineer, and Bo Chen, designer": [
                step("s1", "documents.write_csv", path="people.csv", rows=PEOPLE)
            ]
        },
    ),
]
