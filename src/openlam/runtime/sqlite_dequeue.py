"""A queue's limits hold across worker processes on a SQLite system database.

DBOS (3.4) counts a queue's running workflows (``concurrency``) and its recent starts
(``rate``), then claims that much room. On PostgreSQL it does both in one REPEATABLE
READ or SERIALIZABLE transaction; on SQLite the driver begins the transaction only at
the claim's first write, so two workers polling at once can both count the same room
and together exceed the limit. Here a file lock next to the database makes count and
claim one step for every process on the machine — and a SQLite file serves only one.
"""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from filelock import FileLock

_LOCKED = "_openlam_one_dequeue_at_a_time"
_SHARED_LIMITS = ("_concurrency", "_limiter", "_partition_concurrency", "_partition_limiter")


def serialize_dequeues() -> None:
    """Give DBOS's SQLite system database one dequeue at a time per database file, for
    queues with a shared budget (others cannot overrun: a claim re-checks each row).
    Idempotent; call it before DBOS launches its queue pollers."""
    try:  # DBOS's own module (3.4): a release that moves it must not stop OpenLAM starting
        from dbos._sys_db_sqlite import SQLiteSystemDatabase

        claim = SQLiteSystemDatabase.start_queued_workflows
    except (ImportError, AttributeError):
        logging.getLogger("openlam").warning(
            "this DBOS release has no SQLiteSystemDatabase.start_queued_workflows: queue "
            "limits may be exceeded by several worker processes on SQLite (use PostgreSQL)"
        )
        return
    if getattr(claim, _LOCKED, False):
        return

    @functools.wraps(claim)
    def one_at_a_time(self: Any, queue: Any, *args: Any, **kwargs: Any) -> Any:
        # Unlocked only when the queue provably has no shared limit (an attribute a
        # later DBOS renamed counts as a limit: locking is the safe side).
        if all(hasattr(queue, a) and getattr(queue, a) is None for a in _SHARED_LIMITS):
            return claim(self, queue, *args, **kwargs)
        with _lock_for(str(self.engine.url.database)):
            return claim(self, queue, *args, **kwargs)

    setattr(one_at_a_time, _LOCKED, True)
    SQLiteSystemDatabase.start_queued_workflows = one_at_a_time  # type: ignore[method-assign]


@functools.cache
def _lock_for(database: str) -> FileLock:
    from filelock import FileLock  # here: only workers of limited queues need it

    return FileLock(f"{database}.dequeue.lock")
