"""Following a run live: the typed events of :mod:`openlam.loop.events`, read from the
project database's event log, so it works for runs executed by any process (the
server's own worker, a separate ``openlam worker``, an ``openlam run``).

One poller per process and database reads every new event once and hands each to the
followers of its run, so 200 people watching runs cost one query per poll, not 200.
A run that ended without a final event in the log (cancelled while queued, or run by
an OpenLAM that kept no event log) gets one made from its stored outcome.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError

from openlam.errors import UserError
from openlam.loop.events import Event, RunFinished, make_event
from openlam.memory.tables import run_events, runs
from openlam.runtime.eventlog import EventLog

log = logging.getLogger("openlam.server")
FINAL = frozenset({"completed", "partial", "blocked", "failed", "cancelled"})
STATUS_CHECK_SECONDS = 3.0  # how often a quiet follower looks whether its run ended
GRACE_SECONDS = 1.0  # a run's last events may be written just after its status
PING_SECONDS = 15.0  # an idle event stream sends a comment this often (`[server] sse_ping`)


def ping_seconds(settings: Any) -> float:
    """How often an idle server-sent event stream sends a keep-alive comment, so that a
    proxy (nginx, a load balancer) does not close it: ``OPENLAM_SSE_PING`` or
    ``[server] sse_ping`` in ``openlam.toml`` (seconds, default 15)."""
    import os

    server = (getattr(settings, "raw", None) or {}).get("server") or {}
    given = os.environ.get("OPENLAM_SSE_PING") or server.get("sse_ping")
    if given is None or given == "":
        return PING_SECONDS
    try:
        seconds = float(given)
    except (TypeError, ValueError):
        raise UserError(
            f"the SSE keep-alive interval {given!r} is not a number",
            "set OPENLAM_SSE_PING or [server] sse_ping to seconds, e.g. 15",
        ) from None
    if not 0.05 <= seconds <= 3600:
        raise UserError(
            f"the SSE keep-alive interval {seconds:g} s is out of range",
            "give 0.05 to 3600 seconds (default 15)",
        )
    return seconds


def _belongs(event_run: str, run_id: str) -> bool:
    return event_run == run_id or event_run.startswith(run_id + ".")


@dataclass(eq=False)
class _Follower:
    run_id: str
    queue: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)


class _Hub:
    """Reads new events for every follower of one database in this event loop."""

    def __init__(self, engine: sa.Engine, poll: float) -> None:
        self.engine = engine
        self.poll = poll
        self.followers: set[_Follower] = set()
        self.last_id: int | None = None
        self.task: asyncio.Task[None] | None = None

    async def subscribe(self, run_id: str) -> tuple[_Follower, int]:
        """A follower of ``run_id`` and the last event number the hub has read: every
        later event of the run reaches the follower's queue."""
        if self.last_id is None:
            self.last_id = await asyncio.to_thread(self._max_id)
        follower = _Follower(run_id)
        self.followers.add(follower)
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._run(), name="openlam-event-hub")
        return follower, self.last_id

    def unsubscribe(self, follower: _Follower) -> None:
        self.followers.discard(follower)

    def _max_id(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.max(run_events.c.id))).scalar() or 0)

    def _read_new(self, after: int) -> list[tuple[int, str, dict[str, Any]]]:
        query = (
            sa.select(run_events.c.id, run_events.c.run_id, run_events.c.data)
            .where(run_events.c.id > after)
            .order_by(run_events.c.id)
            .limit(2000)
        )
        with self.engine.connect() as conn:
            return [(r.id, r.run_id, r.data) for r in conn.execute(query)]

    async def _run(self) -> None:
        while self.followers:
            try:
                rows = await asyncio.to_thread(self._read_new, self.last_id or 0)
            except Exception as exc:  # the database is briefly away: try again
                log.warning("reading run events failed: %s", exc)
                rows = []
            for event_id, event_run, data in rows:
                self.last_id = event_id
                for follower in list(self.followers):
                    if _belongs(event_run, follower.run_id):
                        follower.queue.put_nowait(data)
            if len(rows) < 2000:
                await asyncio.sleep(self.poll)


_hubs: dict[tuple[str, int], _Hub] = {}


def _hub(engine: sa.Engine, poll: float) -> _Hub:
    key = (str(engine.url), id(asyncio.get_running_loop()))
    hub = _hubs.get(key)
    if hub is None:
        hub = _hubs[key] = _Hub(engine, poll)
    return hub


def _run_row(engine: sa.Engine, run_id: str) -> dict[str, Any] | None:
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(
                runs.c.id,
                runs.c.status,
                runs.c.summary,
                runs.c.outcome,
                runs.c.parent_id,
                runs.c.goal,
                runs.c.agent,
            ).where(runs.c.id == run_id)
        ).first()
    return dict(row._mapping) if row else None


def _final_event(row: dict[str, Any]) -> RunFinished:
    outcome = row.get("outcome") or {}
    root = row["id"].split(".", 1)[0]
    return RunFinished(
        run_id=row["id"],
        root_id=root,
        status=row["status"],
        summary=row.get("summary") or "",
        answer=outcome.get("answer"),
    )


async def follow(workforce: Any, run_id: str, *, poll: float = 0.2) -> AsyncIterator[Event]:
    """The events of ``run_id`` (and of the runs it delegated to), from its first, as
    they happen, ending after the run's own ``run.finished``. Raises UserError if there
    is no such run."""
    engine = workforce.store.engine
    row = await asyncio.to_thread(_run_row, engine, run_id)
    if row is None:
        raise UserError(f"no run {run_id!r} in this workspace", "list runs with GET /api/v1/runs")
    hub = _hub(engine, poll)
    follower, boundary = await hub.subscribe(run_id)
    try:
        history = EventLog(engine)
        after = 0
        while True:  # what happened before the hub's boundary, read directly
            rows = await asyncio.to_thread(history.read, run_id, after)
            rows = [(i, d) for i, d in rows if i <= boundary]
            for event_id, data in rows:
                after = event_id
                event = _typed(data)
                if event is not None:
                    yield event
                    if _ends(event, run_id):
                        return
            if len(rows) < 1000:
                break
        loop = asyncio.get_running_loop()
        # ended already, yet no final event on record: wait only the grace period
        ended_at: float | None = loop.time() if row["status"] in FINAL else None
        while True:
            try:
                data = await asyncio.wait_for(
                    follower.queue.get(),
                    STATUS_CHECK_SECONDS if ended_at is None else GRACE_SECONDS,
                )
            except TimeoutError:
                if ended_at is not None and loop.time() - ended_at >= GRACE_SECONDS:
                    yield _final_event(row)
                    return
                row = await asyncio.to_thread(_run_row, engine, run_id) or row
                if row["status"] in FINAL:
                    ended_at = loop.time()
                continue
            event = _typed(data)
            if event is not None:
                yield event
                if _ends(event, run_id):
                    return
    finally:
        hub.unsubscribe(follower)


def _ends(event: Event, run_id: str) -> bool:
    return event.kind == "run.finished" and event.run_id == run_id


def _typed(data: dict[str, Any]) -> Event | None:
    try:
        return make_event(data)
    except ValidationError as exc:  # written by a newer OpenLAM, say: skip, do not break
        log.warning("skipping an event that is not understood: %s", exc.errors()[:1])
        return None
