"""Waiting for people inside a durable run: questions (``ask_human``, ``human.ask``).

The run records the question in the project database and waits for its answer there
(see :mod:`openlam.runtime.waiting`): a process that dies while waiting resumes
waiting — or finds the answer — after recovery. Anyone can answer from another
process: ``openlam runs answer RUN STEP "text"``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from openlam.config import Settings
from openlam.loop.state import Gap, GapKind, StepResult
from openlam.runtime.waiting import question_key, until

if TYPE_CHECKING:
    from openlam.loop.runner import Runner
    from openlam.loop.state import StepRecord

DEFAULT_WAIT = 86_400.0


async def ask(runner: Runner, record: StepRecord, args: dict[str, Any]) -> StepResult:
    from openlam.runtime.process import current

    rt = current()
    run_id = runner.request.run_id
    question = str(args.get("question", "")).strip()
    wait = float(args.get("timeout_seconds") or DEFAULT_WAIT)
    asked_at = rt.store.ask(run_id, record.id, question)
    runner.env.save(runner.request, runner.state, None)  # the question is visible now
    runner.emit(
        "question",
        step=record.id,
        question=question,
        answer_with=f'openlam runs answer {run_id} {record.id} "..."',
    )

    def answered_or_stopped() -> dict[str, str] | None:
        # A run cancelled (or past its deadline) while it waits stops waiting, as it
        # does for an approval; the answer wins if both are there.
        found = rt.store.answer_of(run_id, record.id)
        stop = None if found is not None else rt.stop_reason(run_id)
        return found if stop is None else {"stopped": stop}

    with rt.waiting_for_person(run_id):
        reply = await until(
            answered_or_stopped,
            key=question_key(run_id, record.id),
            wakeups=rt.wakeups,
            deadline=lambda: asked_at + wait - time.time(),
        )
    if reply is not None and "stopped" in reply:
        return StepResult.blocked(
            f"stopped while waiting for an answer: {reply['stopped']}", attempts=1
        )
    if reply is None or not reply["answer"].strip():
        why = f"nobody answered {question!r} within {wait:g} s"
        runner.state.gaps.append(
            Gap(kind=GapKind.human, what="an answer from a person", why=why, step=record.id)
        )
        return StepResult.blocked(why, attempts=1)
    return StepResult.succeeded(
        {"question": question, "answer": reply["answer"], "by": reply["by"]}
    )


def answer(settings: Settings, run_id: str, step_id: str, text: str, by: str) -> bool:
    """Deliver an answer to a waiting run, from any process (it notices within a second;
    at once when it runs in this process)."""
    from openlam.memory.store import Store
    from openlam.runtime import process

    answered = Store(settings.app_database_url).answer(run_id, step_id, text, by)
    rt = process.current_or_none()
    if answered and rt is not None:
        rt.wakeups.wake(question_key(run_id, step_id))
    return answered


def answer_question(settings: Settings, run_id: str, step_id: str, text: str, by: str) -> str:
    """Answer the question a run's step asked, after checking that it asked one and is
    still waiting for it (``openlam runs answer`` and the server). Returns the run's id
    (``run_id`` may be a unique prefix); a UserError names what is wrong."""
    from openlam.errors import UserError
    from openlam.memory.store import Store

    run = Store(settings.app_database_url).get_run(run_id)
    if run is None:
        raise UserError(
            f"no run {run_id!r} in this workspace", "list runs with `openlam runs list`"
        )
    asking = [s for s in run["steps"] if s["step_id"] == step_id]
    if not asking or asking[0]["action"] not in ("ask_human", "human.ask"):
        questions = [
            s["step_id"]
            for s in run["steps"]
            if s["action"] in ("ask_human", "human.ask") and s["status"] == "pending"
        ]
        raise UserError(
            f"run {run['id']} has no question at step {step_id!r}",
            f"questions waiting: {', '.join(questions) or 'none'}",
        )
    if asking[0]["status"] != "pending":
        raise UserError(f"the question at step {step_id} is already {asking[0]['status']}")
    answer(settings, run["id"], step_id, text, by)
    return str(run["id"])
