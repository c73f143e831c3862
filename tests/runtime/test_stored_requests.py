"""A run queued (or interrupted) by the previous version, whose workflow input holds the
agent as an untyped dict, still runs durably as that agent."""

from __future__ import annotations

from pathlib import Path

from dbos import DBOS, SetWorkflowID

from openlam import Workforce
from openlam.loop.state import Outcome
from openlam.runtime.durable import run_workflow
from openlam.testing import scripted_model
from tests.loop.test_stored_formats import OLD_CLERK


async def test_a_workflow_input_written_before_the_typed_agent_runs(workspace: Path) -> None:
    plan = {
        "steps": [{"id": "s1", "action": "files.write", "args": {"path": "a.md", "content": "hi"}}]
    }
    scripted_model("test:stored", [plan, plan])
    outcomes = []
    async with Workforce(workspace, model="test:stored") as wf:
        for run_id, agent in (("old-clerk", OLD_CLERK), ("old-default", {})):
            request = wf.request("write a.md", run_id=run_id).model_dump(mode="json")
            request["agent"] = agent  # as the untyped version wrote it
            with SetWorkflowID(run_id):
                handle = await DBOS.start_workflow_async(run_workflow, request)
            outcomes.append(Outcome.model_validate(await handle.get_result()))
    clerk, default = outcomes
    assert (clerk.status.value, clerk.agent) == ("completed", "clerk"), clerk.summary
    assert (default.status.value, default.agent) == ("completed", "operator"), default.summary
