"""Every outcome says what the run cost besides its work: wall and CPU outside the model
and the actions (the bookkeeping), shown in the CLI report."""

from __future__ import annotations

import asyncio
import io

from rich.console import Console

from openlam import Workforce, action
from openlam.actions.spec import Risk
from openlam.cli.report import print_outcome
from openlam.models.offline import OfflinePlanner
from openlam.testing import scripted_model

NAP = 0.4


@action("test.nap", risk=Risk.read, idempotent=True)
async def nap(seconds: float) -> dict:
    """Waits, like a slow API.

    Args:
        seconds: How long.
    """
    await asyncio.sleep(seconds)
    return {"slept": seconds}


async def test_overhead_excludes_the_actions_time_and_is_reported(settings):
    plan = {
        "steps": [
            {"id": "s1", "action": "test.nap", "args": {"seconds": NAP}},
            {"id": "s2", "action": "test.nap", "args": {"seconds": NAP}},
        ]
    }
    model = scripted_model("test:overhead", [plan])
    async with Workforce(settings=settings, model="test:overhead") as wf:
        wf.runtime.registry.add(nap.__openlam_action__, replace=True)
        outcome = await wf.run("nap twice")
    del model
    u = outcome.usage
    assert outcome.status.value == "completed"
    assert u.wall_seconds >= NAP  # the two naps overlap: at least one nap long
    assert 0 < u.overhead_wall_seconds < u.wall_seconds - NAP + 0.05
    assert u.overhead_cpu_seconds > 0
    out = io.StringIO()
    print_outcome(Console(file=out, width=200), outcome)
    assert f"overhead {u.overhead_wall_seconds:.2f} s wall" in out.getvalue()


async def test_a_run_does_not_inherit_an_earlier_runs_clock(tmp_path):
    """Runs driven directly (no durable workflow) one after another in one task: the
    second one's overhead starts with it, not with the first."""
    import json

    from openlam.actions.registry import ActionRegistry
    from openlam.loop.act import local_action_call
    from openlam.loop.plan import ModelReply
    from openlam.loop.runner import RunEnv, Runner, RunRequest

    registry = ActionRegistry()
    registry.add(nap.__openlam_action__)
    plan = json.dumps({"steps": [{"id": "s1", "action": "test.nap", "args": {"seconds": NAP}}]})

    async def call_model(messages, _schema):
        replanning = "So far:" in messages[-1]["content"]
        text = '{"steps": []}' if replanning else plan
        return ModelReply(text=text, input_tokens=1, output_tokens=1)

    env = RunEnv(
        registry=registry,
        call_model=call_model,
        call_action=local_action_call(registry),
        offline=OfflinePlanner(),
    )
    outcomes = []
    for run_id in ("r1", "r2"):
        outcomes.append(
            await Runner(
                RunRequest(run_id=run_id, goal="nap", model="test:x", workspace=str(tmp_path)), env
            ).run()
        )
        await asyncio.sleep(NAP)  # idle between runs: nobody's overhead
    assert [o.status.value for o in outcomes] == ["completed", "completed"]
    assert outcomes[1].usage.overhead_wall_seconds < NAP / 4  # not the idle time before it
