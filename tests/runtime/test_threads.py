"""Threads under load: blocking actions have a pool of their own, so a burst of them
never holds up other runs' checkpoints, and the pool that carries the bookkeeping stays
at its bound (``[runtime] threads``) however many runs go at once."""

from __future__ import annotations

import asyncio
import gc
import threading
import time
from pathlib import Path

import pytest

from openlam import Workforce
from openlam.config import load_settings
from openlam.errors import UserError
from openlam.testing import ScriptedModel

HOLDING = 4  # blocking actions in flight at once: more than the bookkeeping's 2 threads


class Gate:
    def __init__(self) -> None:
        self.release = threading.Event()
        self.inside = 0
        self.lock = threading.Lock()

    def hold(self, n: int) -> str:
        """Blocks until released, like a slow synchronous API call."""
        with self.lock:
            self.inside += 1
        self.release.wait(30)
        return f"held {n}"


def quick(n: int) -> str:
    """Answers at once."""
    return f"quick {n}"


def plan(chat: list[dict[str, str]]) -> dict:
    goal = next(m["content"] for m in chat if m["role"] == "user")
    action = "local.hold" if "hold" in goal else "local.quick"
    return {"steps": [{"id": "s", "action": action, "args": {"n": 1}}]}


def executor_threads() -> int:
    return sum(t.name.startswith("dbos-executor") for t in threading.enumerate())


async def test_blocking_actions_do_not_hold_up_other_runs_and_threads_stay_bounded(
    workspace: Path,
):
    (workspace / "openlam.toml").write_text("[runtime]\nthreads = 2\naction_threads = 8\n")
    settings = load_settings(workspace).with_overrides(step_timeout=40.0)
    gate = Gate()
    model = ScriptedModel(plan)
    async with Workforce(settings=settings, model=model.model, actions=[gate.hold, quick]) as wf:
        held = [asyncio.create_task(wf.run(f"hold number {i}")) for i in range(HOLDING)]
        try:
            deadline = time.monotonic() + 20
            while gate.inside < HOLDING and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            assert gate.inside == HOLDING  # all blocking calls run at once, on their own pool

            # while every one of them blocks, other runs still checkpoint and finish
            quick_ones = await asyncio.wait_for(
                asyncio.gather(*(wf.run(f"quick number {i}") for i in range(12))), 30
            )
            assert [o.status.value for o in quick_ones] == ["completed"] * 12
            assert all(not t.done() for t in held)
            assert 0 < executor_threads() <= 2
        finally:
            gate.release.set()
        outcomes = await asyncio.wait_for(asyncio.gather(*held), 30)
    assert [o.status.value for o in outcomes] == ["completed"] * HOLDING
    assert sorted(o.steps[0].output for o in outcomes) == [f"held {1}"] * HOLDING


@pytest.mark.parametrize("line", ["threads = 0", 'threads = "many"', "action_threads = -1"])
async def test_a_bad_thread_setting_is_named_with_its_fix(workspace: Path, line: str):
    (workspace / "openlam.toml").write_text(f"[runtime]\n{line}\n")
    key = line.split(" ")[0]
    with pytest.raises(UserError) as caught:
        async with Workforce(workspace):
            pass
    assert f"[runtime] {key} must be a whole number of at least 1" in str(caught.value)
    assert f"{key} = " in caught.value.hint

    # fixed, the same process starts the workspace afresh (nothing half-started was kept)
    (workspace / "openlam.toml").write_text("[runtime]\nthreads = 4\naction_threads = 4\n")
    async with Workforce(workspace) as wf:
        outcome = await wf.run("write 'fixed' to fixed.md")
    assert outcome.status.value == "completed", outcome.summary
    assert (workspace / "fixed.md").read_text() == "fixed"


async def test_starting_leaves_the_garbage_collector_as_it_found_it(workspace: Path):
    assert gc.isenabled()
    async with Workforce(workspace):
        assert gc.isenabled()
    gc.disable()
    try:
        async with Workforce(workspace):
            assert not gc.isenabled()  # the caller's choice stands
    finally:
        gc.enable()


async def test_a_blocking_action_that_never_returns_fails_its_step_at_the_timeout(
    workspace: Path,
):
    settings = load_settings(workspace).with_overrides(step_timeout=0.5, step_retries=0)
    gate = Gate()
    model = ScriptedModel([{"steps": [{"id": "s", "action": "local.hold", "args": {"n": 1}}]}])
    try:
        async with Workforce(settings=settings, model=model.model, actions=[gate.hold]) as wf:
            outcome = await asyncio.wait_for(wf.run("hold forever"), 20)
    finally:
        gate.release.set()
    assert outcome.status.value != "completed"
    step = outcome.steps[0]
    assert step.status.value == "failed" and step.error == "timed out after 0.5s"


async def test_resizing_the_actions_pool_keeps_calls_in_flight():
    from openlam.actions import threads

    release = threading.Event()
    threads.configure(2)
    try:
        first = asyncio.ensure_future(threads.in_action_thread(release.wait, 10))
        await asyncio.sleep(0.05)
        threads.configure(3)  # another workspace's setting: a new pool from now on
        assert await threads.in_action_thread(lambda: "new pool") == "new pool"
        release.set()
        assert await first is True  # the call on the old pool still ends with its result
    finally:
        release.set()
        threads.configure(threads.ACTION_THREADS)
