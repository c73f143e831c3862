"""The workforce as a model: a chat's last user message becomes a goal on the queue, and
the reply is the run's honest report — shared by the OpenAI- and Ollama-compatible APIs
and the MCP tools.

:func:`submit` queues the goal (the request handler never runs it); :func:`drive`
follows the run through :func:`openlam.server.events.follow` and yields a progress
line per notable event, then one :class:`Reply`: the report when the run ends, the
approvals and questions it waits for when it pauses for people (never blocking until
someone decides), or where it stands when it is still working after ``reply_seconds``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from openlam.errors import UserError
from openlam.loop.events import Event
from openlam.loop.state import Outcome, Usage
from openlam.server.compat import report

MODEL = "openlam"
WAIT_QUIET_SECONDS = 1.0  # after a pause for people, this long without events = waiting
REPLY_SECONDS = 300.0  # longest a reply waits for a working run (`[server] reply_seconds`)
CATALOG_SECONDS = 10.0  # how long the list of agents (model names) is reused


class UnknownModel(UserError):
    """A model name that is neither ``openlam`` nor ``openlam/<agent-id>``."""


@dataclass
class Reply:
    """The last thing a chat reply says: ``status`` is the run's final status, or
    ``waiting`` / ``running`` when it has not ended."""

    run_id: str
    status: str
    text: str
    outcome: Outcome | None = None
    approvals: list[Any] = field(default_factory=list)

    @property
    def usage(self) -> Usage:
        return self.outcome.usage if self.outcome else Usage()


# -- model names ----------------------------------------------------------------------

_catalog_cache: dict[str, tuple[float, list[str]]] = {}


def agent_ids(settings: Any) -> list[str]:
    """The ids of the workspace's agents (each is a model ``openlam/<id>``)."""
    from openlam.org.loader import load_catalog

    key = str(settings.workspace)
    hit = _catalog_cache.get(key)
    if hit is not None and hit[0] > time.monotonic():
        return hit[1]
    ids = sorted(agent.id for agent in load_catalog(settings.workspace))
    _catalog_cache[key] = (time.monotonic() + CATALOG_SECONDS, ids)
    return ids


def model_names(settings: Any) -> list[str]:
    return [MODEL, *(f"{MODEL}/{agent}" for agent in agent_ids(settings))]


def agent_of(settings: Any, model: str, *, tags: bool = False) -> str | None:
    """The agent a model name asks for (None: the general operator). ``tags``: an Ollama
    name, which may end in ``:latest``. Raises :class:`UnknownModel`."""
    name = model.strip()
    if tags and name.endswith(":latest"):
        name = name.removesuffix(":latest")
    if name == MODEL:
        return None
    if name.startswith(MODEL + "/"):
        agent = name.removeprefix(MODEL + "/")
        if agent in agent_ids(settings):
            return agent
    raise UnknownModel(
        f"model {model!r} not found",
        f"use {MODEL!r} (the general operator) or '{MODEL}/<agent-id>' "
        "(the list: GET /v1/models or /api/tags)",
    )


# -- the goal -------------------------------------------------------------------------


def text_of(content: Any) -> str:
    """The text of a chat message's content: a string, or OpenAI's list of parts (text
    parts are kept, images and audio are not goals)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            str(p.get("text", ""))
            for p in content
            if isinstance(p, dict) and p.get("type") == "text"
        )
    return ""


def goal_of(messages: list[dict[str, Any]]) -> str:
    """The goal: the last user message's text. Raises UserError when there is none."""
    for message in reversed(messages):
        if message.get("role") == "user":
            goal = text_of(message.get("content")).strip()
            if goal:
                return goal
            break
    raise UserError(
        "no goal: the last user message is missing or empty",
        "send the goal as the last message with role 'user'",
    )


async def submit(workforce: Any, goal: str, agent: str | None) -> str:
    """Queue ``goal`` for ``agent`` (None: the general operator); its run id."""
    request = await workforce.submit(goal, agent=agent, route=False)
    return request.run_id


# -- following the run ----------------------------------------------------------------


async def drive(
    workforce: Any, run_id: str, *, reply_seconds: float | None = None
) -> AsyncIterator[str | Reply]:
    """Progress lines of ``run_id`` as they happen, then its :class:`Reply` (last)."""
    from openlam.server.events import follow

    limit = reply_seconds or reply_limit(workforce.settings)
    events: asyncio.Queue[Event | None] = asyncio.Queue()

    async def pump() -> None:
        try:
            async for event in follow(workforce, run_id):
                events.put_nowait(event)
        finally:
            events.put_nowait(None)

    task = asyncio.create_task(pump(), name=f"openlam-chat-{run_id}")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    agents: dict[str, str] = {}
    paused = False  # a step asked for a person since the last check
    try:
        while True:
            left = deadline - loop.time()
            timeout = min(WAIT_QUIET_SECONDS, left) if paused else left
            try:
                event = await asyncio.wait_for(events.get(), max(timeout, 0.01))
            except TimeoutError:
                if paused:
                    waiting = await _waiting_reply(workforce, run_id)
                    if waiting is not None:
                        yield waiting
                        return
                    paused = False
                if loop.time() >= deadline:
                    yield await _running_reply(workforce, run_id, limit)
                    return
                continue
            if event is None:  # the follow ended: the run ended
                task.result()  # its error, if it failed
                yield await _final_reply(workforce, run_id)
                return
            line = report.progress_line(event, agents)
            if line is not None:
                yield line
            if event.kind in ("approval.requested", "question"):
                paused = True
            if event.kind == "run.finished" and event.run_id == run_id:
                yield await _final_reply(workforce, run_id)
                return
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


def reply_limit(settings: Any) -> float:
    from openlam.config import seconds

    return seconds(settings, "server", "reply_seconds", REPLY_SECONDS)


async def _final_reply(workforce: Any, run_id: str) -> Reply:
    run = await asyncio.to_thread(workforce.store.get_run, run_id) or {}
    if run.get("outcome"):
        outcome = Outcome.model_validate(run["outcome"])
        return Reply(run_id, outcome.status.value, report.outcome_report(outcome), outcome)
    status = str(run.get("status") or "unknown")  # e.g. cancelled while queued
    return Reply(run_id, status, f"**{status}** — run {run_id}: {run.get('summary') or ''}")


async def _waiting_reply(workforce: Any, run_id: str) -> Reply | None:
    """The reply for a run paused for people, or None if nothing waits any more."""

    def read() -> tuple[dict[str, Any], list[Any], list[tuple[str, str, str]]]:
        import sqlalchemy as sa

        from openlam.governance.api import list_approvals
        from openlam.memory.tables import questions

        store = workforce.store
        mine = [
            a
            for a in list_approvals(workforce.settings, status="pending")
            if a.run_id == run_id or a.run_id.startswith(run_id + ".")
        ]
        with store.engine.connect() as conn:
            asked = (
                conn.execute(
                    sa.select(questions).where(
                        questions.c.answer.is_(None),
                        sa.or_(
                            questions.c.run_id == run_id, questions.c.run_id.like(run_id + ".%")
                        ),
                    )
                )
                .mappings()
                .all()
            )
        open_questions = [(q["run_id"], q["step_id"], q["question"]) for q in asked]
        return store.get_run(run_id) or {"id": run_id}, mine, open_questions

    run, approvals, open_questions = await asyncio.to_thread(read)
    if not approvals and not open_questions:
        return None
    return Reply(
        run_id,
        "waiting",
        report.waiting_report(run, approvals, open_questions),
        approvals=approvals,
    )


async def _running_reply(workforce: Any, run_id: str, waited: float) -> Reply:
    run = await asyncio.to_thread(workforce.store.get_run, run_id) or {"id": run_id}
    status = "queued" if run.get("status") == "queued" else "running"
    return Reply(run_id, status, report.still_running_report(run, waited))


async def run_goal(
    workforce: Any, goal: str, agent: str | None = None, *, reply_seconds: float | None = None
) -> Reply:
    """Queue a goal and wait for its reply (the report, or what it waits for)."""
    run_id = await submit(workforce, goal, agent)
    reply: Reply | None = None
    async for item in drive(workforce, run_id, reply_seconds=reply_seconds):
        if isinstance(item, Reply):
            reply = item
    assert reply is not None
    return reply


async def status_reply(workforce: Any, run_id: str) -> Reply:
    """Where a run stands now: its report if it ended, what it waits for if it waits
    for people, else that it is still working. Raises UserError for an unknown run."""
    run = await asyncio.to_thread(workforce.store.get_run, run_id)
    if run is None:
        raise UserError(
            f"no run {run_id!r} in this workspace",
            "run ids are in run_goal's answer (or `openlam runs list`)",
        )
    run_id = run["id"]
    if run["status"] not in ("queued", "running", "interrupted"):
        return await _final_reply(workforce, run_id)
    waiting = await _waiting_reply(workforce, run_id)
    if waiting is not None:
        return waiting
    return Reply(
        run_id,
        run["status"],
        report.still_running_report(run, time.time() - float(run.get("created_at") or time.time())),
    )
