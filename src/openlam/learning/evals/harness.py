"""Run a suite's tasks with a model and score each on its real end state.

Every task runs in a workspace of its own (a temporary directory: its own SQLite
databases, files, peers), through the same :class:`~openlam.workforce.Workforce` a user
runs goals with: planning, governance, durable execution, the real actions. Approvals
are decided by the harness as a stand-in person (``approvals="approve"`` by default) and
questions answered with a fixed line; both are counted — a task that needed a person is
a task that needed correction.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from openlam.config import Settings, load_settings
from openlam.learning.evals.controls import CONTROLS, register_controls
from openlam.learning.evals.results import EvalStore, TaskScore
from openlam.learning.evals.suite import EvalTask, Suite
from openlam.memory.engines import release_engines

NO_ANSWER = "No person is available during this evaluation; go on without an answer."
MODEL_SETTINGS = ("model", "openai_base_url", "openai_api_key", "ollama_url", "model_timeout")


@dataclasses.dataclass
class EvalOptions:
    model: str
    agent: str | None = None
    split: str | None = None
    limit: int | None = None
    approvals: str = "approve"  # approve | deny: what the stand-in person decides
    task_timeout: float = 180.0


async def run_suite(
    suite: Suite,
    options: EvalOptions,
    store: EvalStore,
    *,
    base: Settings | None = None,
    on_task: Callable[[TaskScore], None] | None = None,
) -> str:
    """Run the selected tasks one after another; returns the evaluation's id."""
    tasks = suite.select(options.split, options.limit)
    config = {"limit": options.limit, "approvals": options.approvals, "tasks": len(tasks)}
    eval_id = store.start(suite.name, options.model, options.agent, options.split, config)
    status = "failed"
    try:
        for task in tasks:
            score = await run_task(suite, task, options, base)
            store.add(eval_id, score)
            if on_task:
                on_task(score)
        status = "finished"
    finally:
        store.finish(eval_id, status)
    return eval_id


async def run_task(
    suite: Suite, task: EvalTask, options: EvalOptions, base: Settings | None = None
) -> TaskScore:
    with tempfile.TemporaryDirectory(prefix=f"openlam-eval-{task.id}-") as tmp:
        workspace = Path(tmp)
        try:
            return await _score(suite, task, options, base, workspace)
        finally:  # a long suite must not keep every finished task's databases open
            release_engines(workspace)
            gc.collect()  # DBOS's engine of a stopped runtime is only freed with its cycle


async def _score(
    suite: Suite, task: EvalTask, options: EvalOptions, base: Settings | None, workspace: Path
) -> TaskScore:
    async with suite.episode(task, workspace) as check:
        if options.model in CONTROLS:  # after the episode: it may fill in addresses
            register_controls(task.plans, task.negative_plans())
        settings = task_settings(workspace, base)
        started = time.monotonic()
        outcome, error = await _run(task, options, settings, suite.approvals or options.approvals)
        wall = time.monotonic() - started
        people = _people(settings)
        if outcome is None:
            return TaskScore(
                task.id,
                task.split,
                False,
                False,
                "error",
                wall_seconds=wall,
                detail=error,
                **people,
            )
        found = check(outcome)
        if not found.goal_done:  # what the run said, next to what the checker found
            found.detail = f"{found.detail} [run {outcome.status.value}: {outcome.summary[:300]}]"
    usage = outcome.usage
    return TaskScore(
        task.id,
        task.split,
        found.goal_done,
        found.deliverable_correct,
        outcome.status.value,
        model_requests=usage.model_requests,
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        wall_seconds=round(wall, 3),
        detail=found.detail,
        run_id=outcome.run_id,
        attack_success=found.attack_success,
        **people,
    )


def task_settings(workspace: Path, base: Settings | None) -> Settings:
    """The task workspace's settings, with the model connection of ``base`` (the user's
    workspace) and never its database: a task's state stays in its own directory."""
    settings = load_settings(workspace)
    if base is not None:
        settings = settings.with_overrides(**{k: getattr(base, k) for k in MODEL_SETTINGS})
    return dataclasses.replace(settings, database_url=None)


async def _run(
    task: EvalTask, options: EvalOptions, settings: Settings, approvals: str
) -> tuple[Any, str]:
    from openlam.workforce import Workforce

    async with Workforce(settings=settings, model=options.model) as wf:
        for spec in task.actions:  # the world's own tools (a suite's in-process actions)
            wf.runtime.registry.add(spec, replace=True)
        person = asyncio.create_task(_stand_in(settings, approvals))
        try:
            async with asyncio.timeout(options.task_timeout):
                return await wf.run(
                    task.goal, agent=options.agent, learn=False, context=task.context or None
                ), ""
        except TimeoutError:
            return None, f"no outcome within {options.task_timeout:g} s"
        except Exception as exc:  # one task's crash is that task's score, not the suite's
            return None, f"{type(exc).__name__}: {exc}"
        finally:
            person.cancel()
            await asyncio.gather(person, return_exceptions=True)


async def _stand_in(settings: Settings, decision: str) -> None:
    """Decide pending approvals and answer questions while the task runs."""
    import sqlalchemy as sa

    from openlam.governance.api import approval_store
    from openlam.governance.approvals import APPROVED, DENIED, PENDING
    from openlam.memory.store import Store
    from openlam.memory.tables import questions

    approvals, store = approval_store(settings), Store(settings.app_database_url)
    status = APPROVED if decision == "approve" else DENIED
    while True:
        for approval in await asyncio.to_thread(approvals.list, status=PENDING):
            await asyncio.to_thread(
                approvals.decide,
                approval.id,
                "system:eval",
                status,
                comment="decided by the evaluation harness",
                check_role=False,
            )
        with store.engine.connect() as conn:
            waiting = conn.execute(
                sa.select(questions.c.run_id, questions.c.step_id).where(
                    questions.c.answer.is_(None)
                )
            ).all()
        for run_id, step_id in waiting:
            await asyncio.to_thread(store.answer, run_id, step_id, NO_ANSWER, "system:eval")
        await asyncio.sleep(0.1)


def _people(settings: Settings) -> dict[str, Any]:
    """How much a person was involved: approvals asked, edited or denied; questions."""
    import sqlalchemy as sa

    from openlam.governance.api import approval_store
    from openlam.governance.approvals import DENIED, EDITED
    from openlam.memory.engines import engine_for
    from openlam.memory.tables import questions

    every = approval_store(settings).list()
    with engine_for(settings.app_database_url).connect() as conn:
        asked = conn.execute(sa.select(sa.func.count()).select_from(questions)).scalar() or 0
    return {
        "approvals": len(every),
        "questions": int(asked),
        "corrections": sum(a.status in (EDITED, DENIED) for a in every),
    }
