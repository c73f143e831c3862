"""Budgets per run, agent, department and day; rate limits per action."""

from __future__ import annotations

import pytest

from openlam.governance.budget import BudgetConfig, Budgets, Limits, parse_rate
from tests.governance.conftest import Harness

NOTE = {
    "steps": [
        {"id": "s1", "action": "notes.write", "args": {"text": "a"}},
        {"id": "s2", "action": "notes.write", "args": {"text": "b"}, "depends_on": ["s1"]},
        {"id": "s3", "action": "notes.write", "args": {"text": "c"}, "depends_on": ["s2"]},
    ]
}


async def test_run_action_budget_blocks_the_step_and_names_the_budget(harness: Harness) -> None:
    gov = harness.governance(budgets=BudgetConfig(run=Limits(actions=2)))
    outcome = await harness.run(gov, [NOTE])
    assert harness.world.notes == ["a", "b"]
    s3 = next(s for s in outcome.steps if s.id == "s3")
    assert s3.status.value == "blocked"
    assert "budget run.actions exceeded" in (s3.error or "")
    assert outcome.status.value == "partial"
    assert any("budget run.actions" in g.why for g in outcome.gaps)
    assert gov.audit.records(kind="budget")[0]["body"]["reason"].startswith("budget run.actions")


async def test_token_budget_per_agent_per_day_spans_runs(harness: Harness) -> None:
    gov = harness.governance(budgets=BudgetConfig(agent={"*": Limits(tokens=30)}))
    one = {"steps": [{"id": "s1", "action": "notes.write", "args": {"text": "x"}}]}
    first = await harness.run(gov, [one], agent={"id": "writer"}, tokens=10)  # 20 tokens
    assert first.status.value == "completed"
    second = await harness.run(gov, [one], agent={"id": "writer"}, tokens=10)  # 40 > 30
    assert second.status.value == "blocked"
    assert "budget agent[writer].tokens exceeded: 40 used, limit 30 per day" in second.summary
    other = await harness.run(gov, [one], agent={"id": "other"}, tokens=10)
    assert other.status.value == "completed"


async def test_model_requests_budget_refuses_the_next_model_call(harness: Harness) -> None:
    gov = harness.governance(budgets=BudgetConfig(run=Limits(model_requests=1)))
    failing = {"steps": [{"id": "s1", "action": "notes.write", "args": {"text": "${s0.output.x}"}}]}
    # s0 does not exist → the plan is invalid → a repair request, which the budget refuses
    outcome = await harness.run(gov, [failing, NOTE])
    assert harness.world.notes == []
    assert outcome.status.value == "failed"
    assert "budget run.model_requests exceeded: 1 used (+1 now), limit 1" in outcome.summary
    assert [r["body"]["reason"] for r in gov.audit.records(kind="budget")] == [
        "budget run.model_requests exceeded: 1 used (+1 now), limit 1"
    ]


def test_cost_department_and_day_budgets(harness: Harness) -> None:
    config = BudgetConfig(
        department={"finance": Limits(cost=1.0)},
        day=Limits(actions=3),
        prices={"openai:*": (2.0, 10.0)},
    )
    budgets = Budgets(harness.settings.app_database_url, config)
    budgets.sync_model_usage("r1", "cfo", "finance", "openai:gpt-x", 1, 200_000, 80_000)
    assert budgets.totals(run_id="r1")["cost"] == pytest.approx(0.4 + 0.8)
    assert (
        budgets.exceeded("r1", "cfo", "finance")
        == "budget department[finance].cost exceeded: 1.2 used, limit 1 per day"
    )
    assert budgets.exceeded("r2", "clerk", "sales") is None
    for i in range(3):
        budgets.record_action(f"r{i}", "clerk", "sales", "notes.write", key=f"k{i}")
    budgets.record_action("r0", "clerk", "sales", "notes.write", key="k0")  # a replay: no-op
    assert budgets.totals()["actions"] == 3
    assert budgets.exceeded("r9", "clerk", "sales").startswith("budget day.actions exceeded")


async def test_rate_limit_per_action(harness: Harness) -> None:
    clock = [1_000_000.0]
    gov = harness.governance(
        budgets=BudgetConfig(rate_limits={"notes.*": parse_rate("2/1h")}), clock=lambda: clock[0]
    )
    outcome = await harness.run(gov, [NOTE])
    assert harness.world.notes == ["a", "b"]
    assert "rate limit notes.* reached" in outcome.summary
    clock[0] += 3601  # an hour later the window has moved on
    one = {"steps": [{"id": "s1", "action": "notes.write", "args": {"text": "d"}}]}
    assert (await harness.run(gov, [one])).status.value == "completed"
    assert parse_rate("100/d") == (100, 86400.0)


async def test_a_replayed_run_gets_the_same_answers(harness: Harness) -> None:
    """A durable run replays its workflow after a crash: the gate must answer each step
    as it did the first time, although the run's own usage now counts against it."""
    gov = harness.governance(budgets=BudgetConfig(run=Limits(actions=2, model_requests=1)))
    first = await harness.run(gov, [NOTE], run_id="r-replay")
    assert [s.status.value for s in first.steps] == ["succeeded", "succeeded", "blocked"]
    records = len(gov.audit.records())
    again = await harness.run(gov, [NOTE], run_id="r-replay")
    assert [s.status.value for s in again.steps] == ["succeeded", "succeeded", "blocked"]
    assert again.summary == first.summary
    assert len(gov.audit.records()) == records  # nothing decided or recorded twice
    assert gov.budgets.totals(run_id="r-replay")["actions"] == 2
    assert gov.audit.verify().ok


async def test_without_budgets_a_runs_usage_is_recorded_once_when_it_ends(harness: Harness) -> None:
    gov = harness.governance()  # no budget, no rate limit: nothing is counted per step
    outcome = await harness.run(gov, [NOTE])
    assert outcome.status.value == "completed"
    assert gov.budgets.totals(run_id=outcome.run_id)["actions"] == 0  # not yet
    for _ in range(2):  # a replayed end of run must not count it twice
        await gov.learn_hook(outcome, {"request": {"agent": {}}})
    used = gov.budgets.totals(run_id=outcome.run_id)
    assert used["actions"] == 3
    assert used["model_requests"] == outcome.usage.model_requests >= 1
    assert used["tokens"] == outcome.usage.input_tokens + outcome.usage.output_tokens
