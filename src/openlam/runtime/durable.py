"""Runs as DBOS workflows whose model calls and actions are journaled by name.

DBOS gives a run its durability — a workflow recovered after a crash, queues,
executors. Inside it, every model request and every action is a checkpoint of the run's
:class:`~openlam.runtime.journal.Journal`, keyed by the plan's step id (or the model
request's number), so a replayed run gets each step's own recorded result back whatever
order its concurrent steps finished in, and nothing that finished runs again.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from typing import Any

from dbos import DBOS

from openlam.errors import ModelError, UserError
from openlam.loop.overhead import start_clock
from openlam.loop.perceive import Perception
from openlam.loop.plan import ModelReply
from openlam.loop.runner import ActionCall, RunEnv, Runner, RunRequest, ungoverned
from openlam.loop.state import Outcome, StepResult
from openlam.memory.engines import db_work
from openlam.models.offline import OfflinePlanner
from openlam.runtime.executors import ExecutorStopped
from openlam.runtime.journal import Journal
from openlam.runtime.process import RUN_WORKFLOW, Runtime, current, end_of_run

log = logging.getLogger(__name__)

# Bump only when the sequence of a run's work changes incompatibly: DBOS recovers a
# pending run only under the version it started with, so an unpinned (code-hash)
# version would strand every interrupted run after an upgrade. (2: journaled steps.)
WORKFLOW_VERSION = "openlam-run-2"


@DBOS.workflow(name=RUN_WORKFLOW)
async def run_workflow(request: dict[str, Any]) -> dict[str, Any]:
    start_clock(str(request.get("run_id", "")))  # the run's overhead counts from here
    rt = current()
    with rt.running_here():  # closing the process stops it (Runtime.stop_runs)
        try:
            return await _run(rt, RunRequest.model_validate(request))
        except ExecutorStopped:  # this process stopped under the run: the next resumes it
            raise
        except Exception as exc:  # DBOS records the workflow as failed: so does the run
            await _record_failure(rt, str(request.get("run_id", "")), exc)
            raise


async def _record_failure(rt: Runtime, run_id: str, exc: Exception) -> None:
    why = " ".join(str(exc).split())  # one line: a UserError's fix follows its message
    summary = f"Failed: the run stopped on an error: {why or type(exc).__name__}"
    try:
        await db_work(rt.store.engine, rt.store.mark_failed, run_id, summary)
    except Exception as trouble:  # the database itself is the trouble: left for recovery
        log.warning("could not record that run %s failed: %s", run_id, trouble)


async def _run(rt: Runtime, req: RunRequest) -> dict[str, Any]:
    journal = await db_work(rt.store.engine, rt.journals.journal, req.run_id)
    call_model = _model_call(rt, req, journal)
    if rt.gate is not None:  # budgets are checked before each model call
        call_model = rt.gate.govern_model(req, call_model)
    if req.deadline_at is not None:
        rt.deadlines[req.run_id] = req.deadline_at

    async def stopped() -> str | None:
        return await db_work(rt.store.engine, rt.stop_reason, req.run_id)

    learner = rt.learner

    async def consult(p: Perception) -> dict[str, Any]:  # checkpointed: a replay decides alike
        assert learner is not None  # offered to the run only when there is one
        ask = learner.consult
        return await journal.once("learn:consult", lambda: ask(p), mark=False)

    env = RunEnv(
        registry=rt.registry,
        consult=consult if learner is not None else None,
        call_model=call_model,
        call_action=_action_call(rt, journal),
        emit=rt.emit,
        save=rt.store.save_run,
        specials=rt.specials,
        gate=rt.gate if rt.gate is not None else ungoverned,
        learn_hooks=rt.learn_hooks,
        resumed=bool(journal.done or journal.interrupted),
        stopped=stopped,
        explain_missing=rt.explain_missing,
        offline=OfflinePlanner(),
    )
    try:
        outcome = await Runner(req, env).run()
    finally:
        rt.deadlines.pop(req.run_id, None)
    await end_of_run(req.run_id)
    return rt.store.stored_outcome(outcome)


def _model_call(rt: Runtime, req: RunRequest, journal: Journal):
    asked = 0

    async def call(messages: list[dict[str, str]], schema: dict[str, Any] | None) -> ModelReply:
        nonlocal asked
        asked += 1
        key = f"model:{asked}"
        if journal.replayed(key):
            return ModelReply.model_validate(journal.done[key])
        lost = journal.interrupted.get(key, 0)  # sent before a crash, never answered
        async with rt.step_slot():
            await db_work(journal.store.engine, journal.begin, key)
            reply = await _ask(rt, req.model, messages, schema)
            reply.requests = 1 + lost
            stored = reply.model_dump(mode="json", exclude_none=True)
            await db_work(journal.store.engine, journal.finish, key, stored)
        return reply

    return call


async def _ask(
    rt: Runtime, model_spec: str, messages: list[dict[str, str]], schema: dict[str, Any] | None
) -> ModelReply:
    from openlam import models
    from openlam.models.resolve import build_model

    try:
        reply = await models.request(build_model(model_spec, rt.settings), messages, schema)
    except (ModelError, UserError) as exc:
        return ModelReply(error=rt.redact(str(exc)))
    return ModelReply(
        text=reply.text,
        input_tokens=reply.input_tokens,
        output_tokens=reply.output_tokens,
        cut_off=reply.cut_off or None,
    )


def _action_call(rt: Runtime, journal: Journal):
    async def call(c: ActionCall) -> StepResult:
        key = f"step:{c.step_id}"
        if journal.replayed(key):
            return StepResult.model_validate(journal.done[key])
        spec = rt.registry.get(c.action)
        resumed = journal.interrupted.get(key, 0)
        async with rt.step_slot():
            if spec is None or not spec.idempotent:  # a repeat could matter: mark in flight
                await db_work(journal.store.engine, journal.begin, key)
            result = await rt.act(c, resumed)
            await db_work(journal.store.engine, journal.finish, key, result.model_dump(mode="json"))
        return result

    return call


async def start_child(request: RunRequest) -> Outcome:
    """Run a delegated sub-goal as a run of its own and wait for its outcome.

    Its id is derived from the parent's run and step, so after a crash the replayed
    parent finds the same child (finished, or recovered and still running) instead of
    starting another. It is started outside the parent's DBOS context: DBOS would record
    the start by call order, which depends on timing when delegations wait for approval.
    """
    loop = asyncio.get_running_loop()
    return await loop.create_task(_start_and_wait(request), context=contextvars.Context())


async def _start_and_wait(request: RunRequest) -> Outcome:
    from dbos import SetWorkflowID

    with SetWorkflowID(request.run_id):
        handle = await DBOS.start_workflow_async(run_workflow, request.model_dump(mode="json"))
    return Outcome.model_validate(await handle.get_result())
