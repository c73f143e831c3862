"""Routing prefers agents whose runs of a kind of goal succeed: records learned from
finished runs (real project database, the shipped catalog) weigh the choice; with no
history routing is unchanged."""

from __future__ import annotations

from pathlib import Path

from openlam.config import load_settings
from openlam.loop.state import RunStatus, StepRecord, StepStatus
from openlam.org import load_catalog
from openlam.org.routing import route, route_with_model
from openlam.org.select import select_agent
from tests.learning.test_advice import learner, outcome

GOAL = "Issue a refund to Jane Doe for order {n}"
FIRST = "billing_operations_specialist"  # the scoring's choice on its words alone
SECOND = "accounts_receivable_specialist"  # the runner-up in the same department


def finish(lr, agent: str, n: int, status: RunStatus) -> None:
    step = StepRecord(
        id="s1",
        action="files.write",
        args={"path": f"r{n}.md", "content": "x"},
        status=StepStatus.succeeded if status is RunStatus.completed else StepStatus.failed,
        verified=status is RunStatus.completed,
    )
    done = outcome(f"run-{agent}-{n}", GOAL.format(n=n), step, status=status)
    lr.learn_now(done.model_copy(update={"agent": agent}), {})


async def test_after_a_fails_and_b_succeeds_on_a_kind_of_goal_routing_picks_b(workspace: Path):
    settings = load_settings(workspace)
    goal = GOAL.format(n=1182)
    before = await select_agent(settings, goal)
    assert before.agent.id == FIRST  # no history: the words decide

    lr = learner(workspace)
    for n in range(3):
        finish(lr, FIRST, 1100 + n, RunStatus.failed)
        finish(lr, SECOND, 1200 + n, RunStatus.completed)
    finish(lr, FIRST, 1100, RunStatus.failed)  # the same run again: counted once
    assert lr.store.agent_records("issue a refund to jane doe for order <number>") == {
        FIRST: (0, 3),
        SECOND: (3, 0),
    }

    after = await select_agent(settings, goal)
    assert after.agent.id == SECOND
    reason = str(after.routing.reason)
    assert "its runs of this kind of goal: 3 of 3 succeeded" in reason
    assert (
        f"preferred over Laura Schmidt ({FIRST}), whose runs of this kind went worse: "
        "0 of 3 succeeded" in reason
    )

    # A rewording (filler words) is the same kind of goal; another kind is not weighed.
    reworded = "Please issue a refund to Jane Doe for the order 7"
    assert (await select_agent(settings, reworded)).agent.id == SECOND
    other = "Issue a refund to Jane Doe for order 1182 and close her account"
    assert (await select_agent(settings, other)).agent.id == FIRST
    # Run by run (--no-learn) and for the workspace ([learning] enabled = false): off.
    assert (await select_agent(settings, goal, learn=False)).agent.id == FIRST
    (workspace / "openlam.toml").write_text("[learning]\nenabled = false\n")
    assert (await select_agent(load_settings(workspace), goal)).agent.id == FIRST


def test_with_no_history_routing_is_unchanged() -> None:
    catalog = load_catalog()
    for goal in (
        GOAL.format(n=1),
        "Post the launch announcement to our Mastodon account",
        "Forecast next quarter's cash position across our bank accounts",
    ):
        plain = route(goal, catalog)
        assert route(goal, catalog, records={}) == plain
        weighed = route(goal, catalog, records={"nobody_here": (5, 0)})
        assert weighed == plain and weighed.candidates == plain.candidates
        assert "runs of this kind" not in plain.reason


async def test_the_model_choosing_from_the_shortlist_sees_the_records() -> None:
    asked: list[str] = []

    async def ask(prompt: str) -> str:
        asked.append(prompt)
        return f'{{"agent": "{SECOND}", "reason": "it refunds reliably"}}'

    records = {FIRST: (0, 3), SECOND: (3, 0)}
    chosen = await route_with_model(GOAL.format(n=5), load_catalog(), ask, records=records)
    assert chosen.agent.id == SECOND and chosen.method == "model"
    assert "its runs of this kind of goal)" in asked[0]
    assert f"- {SECOND} |" in asked[0] and "| 3 of 3 succeeded" in asked[0]
    assert "| 0 of 3 succeeded" in asked[0] and "| none yet" in asked[0]
    assert "The scoring agrees." in chosen.reason
