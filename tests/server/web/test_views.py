"""The dashboard's pages rendered from a real workspace: a run that completed (with a
deliverable), a run waiting for approval, the shipped org chart, every installed action,
the audit log. No HTTP here: the data functions and templates on their own."""

from __future__ import annotations

import asyncio
import enum
from dataclasses import dataclass
from pathlib import Path

import pytest

from openlam import Workforce
from openlam.config import load_settings
from openlam.errors import UserError
from openlam.server.web import views
from openlam.server.web.decide import decide
from openlam.server.web.render import render

POLICY = "rules:\n  - {id: ask-before-writing, action: files.write, decision: require_approval}\n"


class Role(enum.IntEnum):  # the templates need only a role's name
    viewer = 1
    approver = 3


@dataclass(frozen=True)
class Me:
    name: str
    role: Role


def page(name: str, **context) -> str:
    return render(name, me=Me("alice", Role.approver), root="", csrf="tok3n", nav="", **context)


async def wait_pending(wf: Workforce, task: asyncio.Task) -> list:
    while not (pending := wf.runtime.gate.approvals.list(status="pending")):
        assert not task.done(), task.result()
        await asyncio.sleep(0.05)
    return pending


async def test_every_page_renders_what_the_workspace_holds(workspace: Path) -> None:
    (workspace / "policies").mkdir()
    (workspace / "policies" / "org.yaml").write_text(POLICY, encoding="utf-8")
    settings = load_settings(workspace).with_overrides(step_timeout=5.0)
    async with Workforce(settings=settings, model="offline") as wf:
        first = asyncio.create_task(wf.run("write 'hello <b>world</b>' to hello.md"))
        [approval] = await wait_pending(wf, first)
        decide(settings, approval.id, "approve", "alice")
        done = await asyncio.wait_for(first, 60)
        assert done.status.value == "completed", done.summary
        waiting = asyncio.create_task(wf.run("write 'second' to second.md"))
        [approval] = await wait_pending(wf, waiting)

        data = views.overview(settings, wf.store)
        html = page("overview.html", **data)
        assert dict(data["counts"])["completed"] == 1 and data["total"] == 2
        assert approval.id in html and "files.write" in html and done.run_id in html
        assert data["usage_all"]["actions"] >= 2

        run = views.run(settings, wf.store, done.run_id)
        html = page("run.html", tree_root=run.pop("tree"), **run)
        assert "hello.md" in html and f"/runs/{done.run_id}/files/hello.md" in html
        assert "hello &lt;b&gt;world&lt;/b&gt;" in html  # data is escaped, never markup
        assert "sse-connect" not in html  # a finished run needs no live stream
        live = views.run(settings, wf.store, approval.run_id)
        html = page("run.html", tree_root=live.pop("tree"), **live)
        assert f'sse-connect="/runs/{approval.run_id}/live"' in html
        assert "Waiting for approval" in html and approval.id in html

        html = page(
            "approvals.html", rows=views.approvals(settings, False), show_all=False, can_decide=True
        )
        assert f'action="/approvals/{approval.id}"' in html and 'value="tok3n"' in html
        assert "second.md" in html

        decide(
            settings,
            approval.id,
            "edit",
            "alice",
            comment="say more",
            args_json='{"path": "second.md", "content": "second, edited"}',
        )
        outcome = await asyncio.wait_for(waiting, 60)
    assert outcome.status.value == "completed", outcome.summary
    assert (workspace / "second.md").read_text() == "second, edited"
    assert (
        views.deliverable_path(settings, wf.store, outcome.run_id, "second.md")
        == (workspace / "second.md").resolve()
    )

    first_page = views.runs(wf.store, None, limit=1)
    assert first_page["older"] == 1 and first_page["newer"] is None
    second_page = views.runs(wf.store, None, offset=1, limit=1)
    assert second_page["rows"][0]["id"] != first_page["rows"][0]["id"]
    html = page("runs.html", states=views.STATES, status="", top="", **second_page)
    assert "← newer" in html and "offset=0" in html and "older →" not in html
    html = page("audit.html", verdict=None, **views.audit(settings))
    assert "approval.decided" in html and 'hx-post="/audit/verify"' in html
    newest = views.audit(settings, limit=3)
    seqs = [r["seq"] for r in newest["records"]]
    assert seqs == [newest["count"], newest["count"] - 1, newest["count"] - 2]
    one_run = views.audit(settings, outcome.run_id)["records"]
    assert one_run and {r["run_id"] for r in one_run} == {outcome.run_id}
    html = page("gaps.html", gaps=views.gaps(settings))
    assert "No capability gaps recorded" in html
    learned = views.learning(settings)
    html = page("learning.html", **learned)
    assert learned["playbooks"] and learned["playbooks"][0].id in html  # the replayed plan
    assert "files.write" in html and "edited" in html  # the edit taught a lesson


def test_org_chart_shows_every_agent_with_permissions_and_budgets(workspace: Path) -> None:
    (workspace / "openlam.toml").write_text(
        '[governance.budgets.agent."*"]\ntokens = 1000\n', encoding="utf-8"
    )
    data = views.org(load_settings(workspace))
    html = page("org.html", **data)
    assert data["agents"] >= 100 and len(data["departments"]) >= 10
    assert html.count('<details class="agent"') == data["agents"]
    assert "tokens=1000" in html and "Permitted actions" in html


def test_actions_page_lists_every_installed_action(workspace: Path) -> None:
    data = views.actions(load_settings(workspace))
    html = page("actions.html", **data)
    names = {a["name"] for a in data["actions"]}
    assert {"files.write", "email.send", "http.get"} <= names
    assert "risk-external" in html and "openlam mcp add" in html


def test_a_deliverable_outside_the_run_or_workspace_is_never_served(workspace: Path) -> None:
    settings = load_settings(workspace)
    with Workforce(settings=settings, model="offline") as wf:
        outcome = asyncio.run(wf.run("write 'x' to x.md"))
    (workspace / "other.md").write_text("not a deliverable")
    for name in ("other.md", "../x.md", "/etc/passwd", "openlam.toml"):
        with pytest.raises(LookupError):
            views.deliverable_path(settings, wf.store, outcome.run_id, name)


def test_bad_edits_are_refused_with_the_fix(workspace: Path) -> None:
    settings = load_settings(workspace)
    with pytest.raises(UserError, match="not JSON"):
        decide(settings, "nope", "edit", "alice", args_json="{oops")
    with pytest.raises(UserError, match="unknown decision"):
        decide(settings, "nope", "maybe", "alice")
