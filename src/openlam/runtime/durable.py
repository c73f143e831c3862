"""Runs as DBOS workflows: every model call and every action is a checkpointed step.

After a crash the workflow function is replayed: finished steps return their recorded
results instead of running again, so no action is repeated and no model is re-asked.
"""

from __future__ import annotations

from typing import Any

from dbos import DBOS

from openlam.errors import ModelError, UserError
from openlam.loop.runner import RunEnv, Runner, RunRequest
from openlam.loop.state import Outcome
from openlam.runtime.process import current, end_of_run

# Bump only when the sequence of steps a run takes changes incompatibly: DBOS recovers
# a pending run only under the version it started with, so an unpinned (code-hash)
# version would strand every interrupted run after an upgrade.
WORKFLOW_VERSION = "openlam-run-1"


@DBOS.step(name="openlam.model")
async def model_step(model_spec: str, messages: list[dict[str, str]],
                     schema: dict[str, Any] | None) -> dict[str, Any]:
    from openlam import models
    from openlam.models.resolve import build_model

    rt = current()
    try:
        reply = await models.request(build_model(model_spec, rt.settings), messages, schema)
    except (ModelError, UserError) as exc:
        return {"error": rt.redact(str(exc))}
    return {"text": reply.text, "input_tokens": reply.input_tokens,
            "output_tokens": reply.output_tokens}


@DBOS.step(name="openlam.action")
async def action_step(call: dict[str, Any]) -> dict[str, Any]:
    rt = current()
    return rt.redact(await rt.call_action(call))


@DBOS.workflow(name="openlam.run")
async def run_workflow(request: dict[str, Any]) -> dict[str, Any]:
    rt = current()
    req = RunRequest.model_validate(request)

    async def call_model(messages: list[dict[str, str]], schema: dict[str, Any]) -> dict[str, Any]:
        return await model_step(req.model, messages, schema)

    if hasattr(rt.gate, "govern_model"):  # budgets are checked before each model call
        call_model = rt.gate.govern_model(req, call_model)

    env = RunEnv(registry=rt.registry, call_model=call_model, call_action=action_step,
                 emit=rt.emit, save=rt.store.save_run, specials=rt.specials, gate=rt.gate,
                 learn_hooks=rt.learn_hooks)
    outcome = await Runner(req, env).run()
    await end_of_run(req.run_id)
    return outcome.model_dump(mode="json")


async def start_child(request: RunRequest) -> Outcome:
    """Run a delegated sub-goal as a child workflow of the current run.

    Its id is derived from the parent's run and step, so after a crash the replayed
    parent finds the same child (finished or still running) instead of starting another.
    """
    from dbos import SetWorkflowID

    with SetWorkflowID(request.run_id):
        handle = await DBOS.start_workflow_async(run_workflow, request.model_dump(mode="json"))
    return Outcome.model_validate(await handle.get_result())
