"""Waiting for people inside a durable run: questions (``ask_human``, ``human.ask``).

The run records the question, then waits on ``DBOS.recv`` — checkpointed, so a process
that dies while waiting resumes waiting (or finds the answer) after recovery. Anyone can
answer from another process: ``openlam runs answer RUN STEP "text"`` sends the message
through the DBOS system database.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from openlam.config import Settings

if TYPE_CHECKING:
    from openlam.loop.runner import Runner
    from openlam.loop.state import StepRecord

DEFAULT_WAIT = 86_400.0


def topic(step_id: str) -> str:
    return f"answer:{step_id}"


async def ask(runner: Runner, record: StepRecord, args: dict[str, Any]) -> dict[str, Any]:
    from dbos import DBOS

    from openlam.loop.state import Gap, GapKind

    question = str(args.get("question", "")).strip()
    wait = float(args.get("timeout_seconds") or DEFAULT_WAIT)
    runner.env.save(runner.request, runner.state, None)  # the question is visible now
    runner.emit("question", step=record.id, question=question,
                answer_with=f'openlam runs answer {runner.request.run_id} {record.id} "..."')
    message = await DBOS.recv_async(topic(record.id), timeout_seconds=wait)
    if not isinstance(message, dict) or not str(message.get("answer", "")).strip():
        why = f"nobody answered {question!r} within {wait:g} s"
        runner.state.gaps.append(Gap(kind=GapKind.human, what="an answer from a person",
                                     why=why, step=record.id))
        return {"status": "blocked", "error": why, "attempts": 1}
    return {"status": "succeeded", "attempts": 1,
            "output": {"question": question, "answer": str(message["answer"]),
                       "by": str(message.get("by", ""))}}


def answer(settings: Settings, run_id: str, step_id: str, text: str, by: str) -> None:
    """Deliver an answer to a waiting run, from any process."""
    from dbos import DBOSClient

    client = DBOSClient(system_database_url=settings.system_database_url)
    try:
        client.send(run_id, {"answer": text, "by": by}, topic=topic(step_id))
    finally:
        client.destroy()
