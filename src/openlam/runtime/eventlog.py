"""The event log: every event a run emits, kept in the project database in order.

Whoever executes a run — an ``openlam run``, a worker, the server's own worker — writes
its events here, so anyone can follow any run live (the server streams them as
server-sent events) without being the process that runs it.

Writing is off the event loop: :meth:`EventLog.record` puts the event on a queue and a
writer thread inserts what has gathered in one transaction, so a run never waits on
the database for its progress to be shown. The writer lingers a moment (``LINGER``)
after the first event of a batch: a run emits about a dozen events within milliseconds,
and one transaction for them instead of one each was a third of a run's commits.
:meth:`EventLog.close` writes what is left without waiting out the linger.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any

import sqlalchemy as sa

from openlam.memory.tables import run_events

log = logging.getLogger("openlam.events")
BATCH = 500  # events written in one transaction at most
LINGER = 0.05  # seconds the writer gathers events before a transaction
_STOP = object()


class EventLog:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closing = threading.Event()  # cuts the linger short

    # -- writing --------------------------------------------------------------------

    def record(self, event: dict[str, Any]) -> None:
        """A runtime listener: keep ``event`` (written within moments, in order)."""
        if not event.get("run_id") or not event.get("kind"):
            return
        self._queue.put(event)
        if self._writer is None:
            with self._lock:
                if self._writer is None:
                    self._writer = threading.Thread(
                        target=self._write_loop, name="openlam-eventlog", daemon=True
                    )
                    self._writer.start()

    def close(self, timeout: float = 5.0) -> None:
        """Write the events still queued, then stop the writer."""
        writer = self._writer
        if writer is None:
            return
        self._queue.put(_STOP)
        self._closing.set()
        writer.join(timeout)
        self._writer = None
        self._closing.clear()

    def _write_loop(self) -> None:
        while True:
            batch = [self._queue.get()]
            if batch[0] is not _STOP:
                self._closing.wait(LINGER)
            while len(batch) < BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stop = any(item is _STOP for item in batch)
            events = [item for item in batch if item is not _STOP]
            if events:
                self._insert(events)
            if stop:
                return

    def _insert(self, events: list[dict[str, Any]]) -> None:
        rows = [
            {
                "run_id": str(e["run_id"]),
                "root_id": str(e.get("root_id") or e["run_id"]),
                "kind": str(e["kind"]),
                "data": e,
                "ts": float(e.get("ts") or time.time()),
            }
            for e in events
        ]
        for attempt in range(3):
            try:
                with self.engine.begin() as conn:
                    conn.execute(sa.insert(run_events), rows)
                return
            except Exception as exc:  # progress shown late beats a broken run
                if attempt == 2:
                    log.warning("could not record %d run event(s): %s", len(rows), exc)
                time.sleep(0.2 * (attempt + 1))

    # -- reading --------------------------------------------------------------------

    def read(
        self, run_id: str, after: int = 0, limit: int = 1000
    ) -> list[tuple[int, dict[str, Any]]]:
        """Events of ``run_id`` and of the runs below it in its delegation tree (a
        child's id is its parent's plus ``.STEP``), after event number ``after``, oldest
        first, with their numbers."""
        below = sa.and_(
            run_events.c.run_id > f"{run_id}.",  # a range: the index serves it
            run_events.c.run_id < f"{run_id}/",
        )  # "/" sorts right after "."
        query = (
            sa.select(run_events.c.id, run_events.c.data)
            .where(sa.or_(run_events.c.run_id == run_id, below), run_events.c.id > after)
            .order_by(run_events.c.id)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [(row.id, row.data) for row in conn.execute(query)]
