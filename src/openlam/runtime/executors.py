"""Who is executing runs, and who is provably dead.

Every OpenLAM process (an ``openlam run``, a worker, the server) is its own DBOS
executor with a unique id, registered in the ``executors`` table of the project
database with a lease it renews (its heartbeat). A run is only ever recovered — taken
over by another process — when the executor that owned it is provably dead:

* it stopped cleanly (``state = stopped``), or was already declared dead;
* it ran on this host and its process is gone (the pid is not running, or it is a
  different process with the same pid: the process start time differs) — known at once;
* otherwise (another host) its lease ran out: no heartbeat for ``lease_seconds``,
  measured by the database's clock so that clocks of different machines don't matter.

Declaring an executor dead is a compare-and-set on the heartbeat it was seen with, so
two sweepers never both take it over, and an executor that heartbeats in between is
not taken over. An executor that finds it has been declared dead (a machine that was
cut off and comes back) stops at once rather than run its old runs a second time.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from openlam.memory.prepared import Prepared
from openlam.memory.tables import executors as table

log = logging.getLogger(__name__)

ALIVE, STOPPED, DEAD = "alive", "stopped", "dead"
FENCED_EXIT_CODE = 75  # EX_TEMPFAIL: this process was declared dead; its runs moved on


@dataclass(frozen=True)
class Lease:
    heartbeat_seconds: float = 2.0
    lease_seconds: float = 8.0  # three missed heartbeats and some: then another takes over

    @classmethod
    def from_settings(cls, settings: Any) -> Lease:
        from openlam.config import seconds

        beat = seconds(settings, "runtime", "heartbeat_seconds", cls.heartbeat_seconds)
        lease = seconds(settings, "runtime", "lease_seconds", max(cls.lease_seconds, 3 * beat))
        return cls(heartbeat_seconds=beat, lease_seconds=max(lease, 2 * beat))


@dataclass
class ExecutorInfo:
    id: str
    host: str
    pid: int
    pid_start: str
    kind: str
    state: str
    started_at: float
    heartbeat_at: float
    age: float  # seconds since the last heartbeat, by the database's clock

    @property
    def here(self) -> bool:
        return self.host == socket.gethostname()


def new_executor_id(kind: str) -> str:
    host = socket.gethostname()[:24]
    return f"{kind}-{host}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def process_start_time(pid: int) -> str:
    """A token that tells a process from a later one that reuses its pid ("" if unknown)."""
    fields = _proc_stat(pid)
    return fields[19] if len(fields) > 19 else ""  # field 22: start time in clock ticks


def _proc_stat(pid: int) -> list[str]:
    """The fields of /proc/PID/stat after the command name (empty off Linux)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            return handle.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return []


def _pid_alive(pid: int, start: str) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: it exists
    fields = _proc_stat(pid)
    if fields[:1] == ["Z"]:
        return False  # killed, and not yet reaped by its parent: it will never run again
    return not start or process_start_time(pid) in ("", start)


def _db_now(dialect: str) -> Any:
    """Seconds since the epoch by the database server's clock."""
    if dialect == "postgresql":
        return sa.func.extract("epoch", sa.func.now())
    return (sa.func.julianday("now") - 2440587.5) * 86400.0


class Executors:
    """The executors table: register, heartbeat, look up, declare dead."""

    def __init__(self, engine: sa.Engine, lease: Lease | None = None) -> None:
        self.engine = engine
        self.lease = lease or Lease()
        self.now = _db_now(engine.dialect.name)
        # Compiled once: every checkpoint renews the lease.
        self._renew = Prepared(
            engine,
            sa.update(table)
            .where(table.c.id == sa.bindparam("executor_id"), table.c.state == ALIVE)
            .values(heartbeat_at=self.now),
        )

    def register(self, executor_id: str, kind: str) -> None:
        pid = os.getpid()
        with self.engine.begin() as conn:
            conn.execute(
                sa.insert(table).values(
                    id=executor_id,
                    host=socket.gethostname(),
                    pid=pid,
                    pid_start=process_start_time(pid),
                    kind=kind,
                    state=ALIVE,
                    started_at=self.now,
                    heartbeat_at=self.now,
                    recovered_by=None,
                )
            )

    def heartbeat(self, executor_id: str) -> bool:
        """Renew the lease; False when this executor has been declared dead meanwhile."""
        with self.engine.begin() as conn:
            return self.renew(conn, executor_id)

    def renew(self, conn: sa.Connection, executor_id: str) -> bool:
        """Renew the lease inside ``conn``'s transaction (a checkpoint write does this, so
        a process declared dead cannot record another step)."""
        return self._renew.execute(conn, {"executor_id": executor_id}) == 1

    def state_in(self, conn: sa.Connection, executor_id: str) -> str | None:
        """This executor's state as ``conn``'s transaction sees it (None: no record)."""
        return conn.execute(
            sa.select(table.c.state).where(table.c.id == executor_id)
        ).scalar_one_or_none()

    def stop(self, executor_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(table)
                .where(table.c.id == executor_id, table.c.state == ALIVE)
                .values(state=STOPPED)
            )

    def get(self, executor_id: str) -> ExecutorInfo | None:
        found = self.list(ids=[executor_id])
        return found[0] if found else None

    def list(
        self, *, ids: list[str] | None = None, states: tuple[str, ...] | None = None
    ) -> list[ExecutorInfo]:
        query = sa.select(table, (self.now - table.c.heartbeat_at).label("age"))
        if ids is not None:
            query = query.where(table.c.id.in_(ids))
        if states is not None:
            query = query.where(table.c.state.in_(states))
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(table.c.started_at)).mappings().all()
        return [
            ExecutorInfo(
                id=r["id"],
                host=r["host"],
                pid=r["pid"],
                pid_start=r["pid_start"] or "",
                kind=r["kind"],
                state=r["state"],
                started_at=r["started_at"],
                heartbeat_at=r["heartbeat_at"],
                age=float(r["age"] or 0.0),
            )
            for r in rows
        ]

    def is_dead(self, info: ExecutorInfo | None) -> bool:
        """Provably dead: stopped, declared dead, gone from this host, or lease expired."""
        if info is None:
            return True  # no record: a process of an older version, long gone
        if info.state != ALIVE:
            return True
        if info.here:
            return not _pid_alive(info.pid, info.pid_start)
        return info.age > self.lease.lease_seconds

    def declare_dead(self, info: ExecutorInfo, by: str) -> bool:
        """Mark ``info`` dead if it is still as it was seen; True if this call did it."""
        with self.engine.begin() as conn:
            done = conn.execute(
                sa.update(table)
                .where(
                    table.c.id == info.id,
                    table.c.state == info.state,
                    table.c.heartbeat_at == info.heartbeat_at,
                )
                .values(state=DEAD, recovered_by=by)
            )
        return done.rowcount == 1


class Heartbeat:
    """Renews this process's lease on a daemon thread. If the lease was lost (another
    process declared this one dead), ``on_fenced`` runs: by default the process exits,
    because its runs now belong to someone else."""

    def __init__(
        self, executors: Executors, executor_id: str, on_fenced: Callable[[], None] | None = None
    ) -> None:
        self.executors = executors
        self.executor_id = executor_id
        self.on_fenced = on_fenced or exit_fenced
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="openlam-heartbeat", daemon=True)

    def start(self) -> Heartbeat:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        interval = self.executors.lease.heartbeat_seconds
        while not self._stop.wait(interval):
            try:
                alive = self.executors.heartbeat(self.executor_id)
            except Exception as exc:  # the database is briefly unreachable: try again
                log.warning("heartbeat of %s failed: %s", self.executor_id, exc)
                continue
            if not alive and not self._stop.is_set():
                self.on_fenced()
                return


class ExecutorStopped(RuntimeError):
    """This process stopped its runtime while a run was still going (one its queue
    handed over as it shut down): the run's checkpoint is not recorded and the run is
    left, unfinished, for the next process to recover."""


def exit_fenced() -> None:
    log.error(
        "this process was declared dead by another OpenLAM process (its heartbeat "
        "stopped for too long) and its runs were taken over; exiting so that no step "
        "runs twice"
    )
    logging.shutdown()
    os._exit(FENCED_EXIT_CODE)
