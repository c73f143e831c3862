"""A run never reports success for an action that did not happen or was not verified."""

from __future__ import annotations

from pathlib import Path

import pytest

from openlam import Workforce, action
from openlam.actions.spec import ActionContext, Risk
from openlam.testing import scripted_model
from tests.conftest import allow_policy


@action("test.explode", risk=Risk.write)
def explode(reason: str) -> dict:
    """Always raises, like a plugin with a bug.

    Args:
        reason: Text of the error.
    """
    raise RuntimeError(reason)


@action("test.lie", risk=Risk.write, verify=lambda args, out, ctx: "the file is not there")
def lie(ctx: ActionContext, path: str) -> dict:
    """Claims to write a file but does not (its effect check catches it).

    Args:
        path: Where it pretends to write.
    """
    return {"path": path}


async def run(settings, plans, goal="do the work", **options):
    name = f"test:honesty-{id(plans)}"
    model = scripted_model(name, plans)
    async with Workforce(settings=settings, model=name) as wf:
        wf.runtime.registry.add(explode.__openlam_action__, replace=True)
        wf.runtime.registry.add(lie.__openlam_action__, replace=True)
        return await wf.run(goal, **options), model


def step(i, act, **args):
    return {"id": i, "action": act, "args": args}


async def test_exception_in_an_action_fails_the_run_with_its_cause(settings, workspace: Path):
    plan = {
        "steps": [
            step("s1", "files.write", path="ok.txt", content="fine"),
            step("s2", "test.explode", reason="disk on fire"),
        ]
    }
    outcome, _ = await run(settings, [plan, {"steps": [], "note": "cannot fix"}])
    assert outcome.status.value == "partial"
    s2 = next(s for s in outcome.steps if s.id == "s2")
    assert s2.status.value == "failed" and "RuntimeError: disk on fire" in s2.error
    assert "disk on fire" in outcome.summary
    assert (workspace / "ok.txt").read_text() == "fine"


@pytest.mark.usefixtures("local_network")  # the test site is on loopback
async def test_http_500_is_retried_then_reported(settings, site):
    plan = {"steps": [step("s1", "http.get", url=f"{site.url}/error500")]}
    outcome, _ = await run(settings.with_overrides(step_retries=2), [plan])
    assert outcome.status.value == "failed"
    assert "HTTP 500" in outcome.steps[0].error and outcome.steps[0].attempts == 3
    assert site.hits("/error500") == 3


@pytest.mark.usefixtures("local_network")  # the test site is on loopback
async def test_timeout_is_reported_and_nothing_hangs(settings, site):
    plan = {"steps": [step("s1", "http.get", url=f"{site.url}/slow?s=5")]}
    outcome, _ = await run(settings.with_overrides(step_timeout=0.3, step_retries=0), [plan])
    assert outcome.status.value == "failed"
    assert "timed out after 0.3s" in outcome.steps[0].error


async def test_unverified_effect_is_a_failure(settings):
    plan = {"steps": [step("s1", "test.lie", path="x.txt")]}
    outcome, _ = await run(settings, [plan])
    assert outcome.status.value == "failed"
    assert outcome.steps[0].error == "not verified: the file is not there"


async def test_model_saying_done_after_a_failure_cannot_make_it_completed(settings):
    plan = {
        "steps": [
            step("s1", "files.write", path="a.txt", content="a"),
            step("s2", "test.explode", reason="nope"),
        ]
    }
    # the "replan" claims success and plans nothing
    done = {"steps": [], "note": "All done! Everything succeeded."}
    outcome, model = await run(settings, [plan, done])
    assert outcome.status.value == "partial"
    assert len(model.requests) == 2
    assert "s2 test.explode failed" in outcome.summary


async def test_a_replacement_step_that_succeeds_recovers_the_failure(settings, workspace):
    # About recovery, not approvals: a replan (made after reading) may write files here.
    allow_policy(workspace, "scope: org\nguardrails: {tainted_origin: external}\n")
    plan = {
        "steps": [
            step("s1", "test.explode", reason="primary store down"),
            {
                "id": "s2",
                "action": "files.write",
                "depends_on": ["s1"],
                "args": {"path": "report.md", "content": "from primary"},
            },
        ]
    }
    fix = {
        "steps": [
            {
                "id": "s3",
                "action": "files.write",
                "replaces": "s1 s2",
                "args": {"path": "report.md", "content": "from backup"},
            }
        ]
    }
    outcome, model = await run(settings, [plan, fix])
    assert outcome.status.value == "completed", outcome.summary
    assert (workspace / "report.md").read_text() == "from backup"
    assert "primary store down" in model.requests[1][-1]["content"]  # the replan saw the cause
    s1 = next(s for s in outcome.steps if s.id == "s1")
    assert s1.status.value == "failed" and s1.recovered_by == "s3"  # the report keeps the truth


async def test_missing_action_is_a_capability_gap(settings):
    plan = {
        "steps": [
            step("s1", "files.write", path="draft.md", content="hi"),
            {
                "id": "s2",
                "action": "request_capability",
                "args": {"capability": "fax.send", "reason": "the goal asks to fax it"},
            },
        ]
    }
    outcome, _ = await run(settings, [plan])
    assert outcome.status.value == "partial"
    assert [(g.kind.value, g.what) for g in outcome.gaps] == [("capability", "fax.send")]


async def test_plan_with_only_unknown_actions_is_blocked_with_gaps(settings):
    bad = {"steps": [step("s1", "fax.send", to="+1 555")]}
    outcome, model = await run(settings.with_overrides(max_plan_repairs=1), [bad, bad])
    assert outcome.status.value == "blocked"
    assert outcome.gaps[0].what == "fax.send"
    assert "unknown action fax.send" in model.requests[1][-1]["content"]
    assert not outcome.steps  # nothing ran


async def test_unanswered_question_and_impossible_delegation_are_honest_gaps(settings):
    plan = {
        "steps": [
            {
                "id": "q",
                "action": "ask_human",
                "args": {"question": "Which city?", "timeout_seconds": 0.5},
            },
            {"id": "d", "action": "delegate", "args": {"agent": "chief_wizard", "goal": "magic"}},
        ]
    }
    outcome, _ = await run(settings, [plan])
    assert outcome.status.value == "blocked"
    gaps = {g.kind.value: g.why for g in outcome.gaps}
    assert "nobody answered 'Which city?' within 0.5 s" in gaps["human"]
    assert "there is no agent 'chief_wizard'" in gaps["delegation"]
