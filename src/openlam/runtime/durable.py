"""Runs as DBOS workflows: every model call and every action is a checkpointed step.

After a crash the workflow function is replayed: finished steps return their recorded
results instead of running again, so no action is repeated and no model is re-asked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dbos import DBOS

from openlam.actions.spec import ActionContext
from openlam.errors import ModelError, UserError
from openlam.loop.act import execute
from openlam.loop.runner import RunEnv, Runner, RunRequest
from openlam.runtime.process import current

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
    spec = rt.registry.get(call["action"])
    if spec is None:
        return {"status": "failed", "error": f"action {call['action']} is not installed here",
                "attempts": 0}
    ctx = ActionContext(run_id=call["run_id"], step_id=call["step_id"],
                        idempotency_key=call["idempotency_key"],
                        workspace=Path(call["workspace"]), settings=rt.settings,
                        secret=rt.secret)
    result = await execute(spec, ctx, call["args"], timeout=call["timeout"],
                           retries=call["retries"])
    return rt.redact(result)


@DBOS.workflow(name="openlam.run")
async def run_workflow(request: dict[str, Any]) -> dict[str, Any]:
    rt = current()
    req = RunRequest.model_validate(request)

    async def call_model(messages: list[dict[str, str]], schema: dict[str, Any]) -> dict[str, Any]:
        return await model_step(req.model, messages, schema)

    env = RunEnv(registry=rt.registry, call_model=call_model, call_action=action_step,
                 emit=rt.emit, save=rt.store.save_run, specials=rt.specials, gate=rt.gate,
                 learn_hooks=rt.learn_hooks)
    outcome = await Runner(req, env).run()
    return outcome.model_dump(mode="json")
