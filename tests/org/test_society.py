"""The society at work: routing, concurrent delegation across departments, merged results."""

from __future__ import annotations

import os
import subprocess
import sys

from openlam import Workforce
from openlam.memory.store import Store
from openlam.testing import scripted_model

GOAL = "Research three competitors and draft a one-page sales brief"
COMPETITORS = {
    "competitive_intelligence_analyst": "initech",
    "market_research_analyst": "globex",
    "industry_analyst": "umbrella",
}


def delegate(i: str, agent: str, goal: str) -> dict:
    return {"id": i, "action": "delegate", "args": {"agent": agent, "goal": goal}}


def org_model(site_url: str, failing: str | None = None):
    """Answers as each agent would: chosen by the system prompt the agent's run sends."""

    def reply(chat):
        system, user = chat[0]["content"], chat[-1]["content"]
        me = system[: system.find(")") + 1]  # "You are NAME, TITLE (DEPARTMENT)"
        if system.startswith("You are the chief of staff") or "Candidates (id" in system + user:
            return {
                "agent": "head_of_research",
                "reason": "competitor research is research's work; it owns the brief",
            }
        if "So far:" in user:  # a replan: nothing more can be done here
            return {"steps": [], "note": "a delegated part failed"}
        if "Head of Research" in me:
            steps = [
                delegate(f"d{n}", agent, f"Profile the competitor {name.title()}")
                for n, (agent, name) in enumerate(COMPETITORS.items(), 1)
            ]
            steps.append(
                delegate(
                    "d4",
                    "product_marketing_manager",
                    "Write our positioning against Initech, Globex and Umbrella",
                )
            )
            steps += [
                {
                    "id": f"r{n}",
                    "action": "files.read",
                    "depends_on": [f"d{n}"],
                    "args": {"path": f"competitors/{name}.md"},
                }
                for n, name in enumerate(COMPETITORS.values(), 1)
            ]
            steps.append(
                {
                    "id": "r4",
                    "action": "files.read",
                    "depends_on": ["d4"],
                    "args": {"path": "positioning.md"},
                }
            )
            steps.append(
                {
                    "id": "brief",
                    "action": "documents.write_markdown",
                    "args": {
                        "path": "brief.md",
                        "title": "Sales brief: three competitors",
                        "content": "${r1.output.text}\n\n${r2.output.text}\n\n${r3.output.text}\n\n"
                        "## Our positioning\n${r4.output.text}",
                    },
                }
            )
            return {"steps": steps}
        for agent, name in COMPETITORS.items():
            if name.title() in user and "Product Marketing" not in me:
                url = f"{site_url}/{'error500' if agent == failing else 'together/' + name}?n=3"
                return {
                    "steps": [
                        {"id": "s1", "action": "web.fetch", "args": {"url": url}},
                        {
                            "id": "s2",
                            "action": "files.write",
                            "args": {
                                "path": f"competitors/{name}.md",
                                "content": f"## {name.title()}\n" + "${s1.output.content}",
                            },
                        },
                        {
                            "id": "s3",
                            "action": "notes.post",
                            "args": {"text": f"{name.title()} profile in competitors/{name}.md"},
                        },
                    ]
                }
        if "Product Marketing" in me:
            return {
                "steps": [
                    {"id": "s1", "action": "notes.read", "args": {}},
                    {
                        "id": "s2",
                        "action": "files.write",
                        "args": {
                            "path": "positioning.md",
                            "content": "We win on service, not on price.",
                        },
                    },
                ]
            }
        return {"steps": []}

    return reply


def allow_local_pages(workspace):
    (workspace / "openlam.toml").write_text("[web]\nallow_private = true\n")


async def test_goal_is_routed_delegated_concurrently_and_merged(settings, workspace, site):
    allow_local_pages(workspace)
    scripted_model("test:org", org_model(site.url))
    events: list[dict] = []
    async with Workforce(workspace, model="test:org") as wf:
        outcome = await wf.run(GOAL, route=True, on_event=events.append)

    assert outcome.status.value == "completed", outcome.summary
    assert outcome.agent == "head_of_research"
    assert "competitor research is research's work" in (outcome.routing or "")
    assert len(outcome.children) == 4
    children = {
        e["agent"]: e["run_id"]
        for e in events
        if e["kind"] == "run.started" and e.get("parent_id") == outcome.run_id
    }
    assert set(children) == {*COMPETITORS, "product_marketing_manager"}  # research + marketing
    # the three research children fetched together: /together/ answers only then
    assert site.hits("/together/") == 3
    brief = (workspace / "brief.md").read_text()
    for name in ("Initech", "Globex", "Umbrella", "We win on service"):
        assert name in brief
    assert "brief.md" in outcome.deliverables
    assert {"competitors/initech.md", "positioning.md"} <= set(outcome.deliverables)

    store = Store(settings.app_database_url)
    tree = store.get_run(outcome.run_id)
    assert sorted(c["agent"] for c in tree["children"]) == sorted(children)
    assert all(c["status"] == "completed" for c in tree["children"])
    shown = subprocess.run(
        [sys.executable, "-m", "openlam", "runs", "show", outcome.run_id],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "OPENLAM_WORKSPACE": str(workspace)},
    )
    assert shown.returncode == 0, shown.stderr
    for agent in ("head_of_research", *COMPETITORS, "product_marketing_manager"):
        assert agent in shown.stdout


async def test_a_failed_child_makes_the_parent_partial(settings, workspace, site):
    allow_local_pages(workspace)
    scripted_model("test:org-fail", org_model(site.url, failing="market_research_analyst"))
    async with Workforce(workspace, model="test:org-fail") as wf:
        outcome = await wf.run(GOAL, agent="head_of_research")
    assert outcome.status.value == "partial"
    d2 = next(s for s in outcome.steps if s.id == "d2")
    assert d2.status.value == "failed"
    assert "market_research_analyst ended partial" in d2.error  # its fetch failed
    assert "s1 web.fetch failed" in d2.error and "HTTP 500" in d2.error
    assert "market_research_analyst ended partial" in outcome.summary
    assert not (workspace / "brief.md").exists()  # the brief needed every part


async def test_cycles_depth_and_fanout_are_refused(settings, workspace):
    def reply(chat):
        me = chat[0]["content"][: chat[0]["content"].find(")") + 1]
        if "So far:" in chat[-1]["content"]:
            return {"steps": []}
        if "Head of Research" in me:  # 14 delegations: over the fan-out limit of 12
            return {
                "steps": [
                    delegate(f"d{n}", "competitive_intelligence_analyst", f"look at thing {n}")
                    for n in range(14)
                ]
            }
        return {"steps": [delegate("back", "head_of_research", "do it yourself")]}

    scripted_model("test:org-limits", reply)
    async with Workforce(workspace, model="test:org-limits") as wf:
        outcome = await wf.run("audit everything", agent="head_of_research")
    by_id = {s.id: s for s in outcome.steps}
    refused = [s for s in outcome.steps if s.status.value == "blocked"]
    assert len(refused) == 2 and all("fan-out limit (12" in s.error for s in refused)
    child = by_id["d0"]
    assert child.status.value == "failed"  # the child was blocked: its delegation looped
    assert (
        "delegation cycle head_of_research → competitive_intelligence_analyst → "
        "head_of_research" in child.error
    )
    assert outcome.status.value == "failed"
