"""A run's journal: its model calls and actions, checkpointed by name.

DBOS numbers a workflow's steps in the order they are called and replays them by that
number. A run's steps run concurrently and may wait on people for days, so the order in
which they finish — and so the order of any step calls after a wait — depends on timing:
a replay would hand one step the recorded result of another. The journal keys every
checkpoint by what it is instead: ``step:<plan step id>`` for an action,
``model:<n>`` for the n-th model request (the loop only asks the model when no step is
in flight, so n is deterministic). The DBOS workflow around a run still gives it its
durability: recovery after a crash, queues, executors.

A checkpoint is ``started`` before an action that could take effect twice and ``done``
with its result after. On replay, ``done`` returns the recorded result without running
anything; ``started`` means the step was in flight when its process died — it may or may
not have happened — and the action's delivery guarantee decides what to do (see
:func:`openlam.loop.act.resume_note`). A model request found ``started`` was sent and is counted.

Results larger than :data:`INLINE_LIMIT` are kept in a file under
``.openlam/outputs/`` and the row points to it (by a path relative to that folder, so a
moved workspace still resumes), so a 6 MB tool result is not copied into every database
row that mentions it. On PostgreSQL they stay in the row: another machine may resume
the run.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from openlam.actions.workspace import file_name
from openlam.errors import UserError
from openlam.memory.prepared import Prepared
from openlam.memory.tables import checkpoints as table
from openlam.runtime.executors import STOPPED, Executors, ExecutorStopped
from openlam.runtime.executors import exit_fenced as fenced

STARTED, DONE = "started", "done"
INLINE_LIMIT = 256 * 1024  # bytes of JSON kept in the row; more goes to a file
FILE_REF = "$file"
_CHECKPOINTS_OF = sa.select(
    table.c.key, table.c.state, table.c.result, table.c.interruptions
).where(table.c.run_id == sa.bindparam("run_id"))


@dataclass
class Journal:
    """One run's checkpoints, loaded once when the run (re)starts."""

    store: JournalStore
    run_id: str
    done: dict[str, Any] = field(default_factory=dict)
    interrupted: dict[str, int] = field(default_factory=dict)
    """keys whose work was in flight when an earlier process died → times it happened"""

    def replayed(self, key: str) -> bool:
        return key in self.done

    def begin(self, key: str) -> None:
        """Mark ``key`` in flight (before work that must not silently happen twice)."""
        self.store.begin(self.run_id, key, again=key in self.interrupted)

    def finish(self, key: str, result: Any) -> None:
        self.store.finish(self.run_id, key, result)
        self.done[key] = result

    async def once(self, key: str, work: Callable[[], Awaitable[Any]], *, mark: bool = True) -> Any:
        """``work()``'s result, run at most once per completed checkpoint."""
        if key in self.done:
            return self.done[key]
        if mark:
            self.begin(key)
        result = await work()
        self.finish(key, result)
        return result


class JournalStore:
    """Checkpoints in the project database. Every write also renews this executor's
    lease in the same transaction and is refused if the executor was declared dead: a
    process that was cut off and comes back cannot record — or go on from — a step that
    another process has taken over."""

    def __init__(
        self, engine: sa.Engine, executor_id: str, outputs_dir: Path, executors: Executors
    ) -> None:
        self.engine = engine
        self.executor_id = executor_id
        # On PostgreSQL every result stays in its row: a run may resume on another
        # machine, which has its own workspace folder but the same database.
        self.outputs_dir = outputs_dir
        self.in_rows_only = engine.dialect.name != "sqlite"
        self.executors = executors
        insert = (postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert)(
            table
        )
        self._upsert_done = Prepared(
            engine,
            insert.on_conflict_do_update(
                index_elements=["run_id", "key"],
                set_={
                    "state": insert.excluded.state,
                    "result": insert.excluded.result,
                    "executor": insert.excluded.executor,
                    "finished_at": insert.excluded.finished_at,
                },
            ),
        )
        self._insert_started = Prepared(
            engine, insert.on_conflict_do_nothing(index_elements=["run_id", "key"])
        )

    def journal(self, run_id: str) -> Journal:
        journal = Journal(self, run_id)
        with self.engine.connect() as conn:
            rows = conn.execute(_CHECKPOINTS_OF, {"run_id": run_id}).all()
        for key, state, result, interruptions in rows:
            if state == DONE:
                journal.done[key] = self._load(result)
            else:
                journal.interrupted[key] = interruptions + 1
        return journal

    def begin(self, run_id: str, key: str, *, again: bool) -> None:
        now = time.time()
        with self.engine.begin() as conn:
            self._fence(conn)
            if again:
                conn.execute(
                    sa.update(table)
                    .where(table.c.run_id == run_id, table.c.key == key)
                    .values(
                        executor=self.executor_id,
                        started_at=now,
                        interruptions=table.c.interruptions + 1,
                    )
                )
            else:
                self._insert_started.execute(
                    conn,
                    {
                        "run_id": run_id,
                        "key": key,
                        "state": STARTED,
                        "result": None,
                        "executor": self.executor_id,
                        "interruptions": 0,
                        "started_at": now,
                        "finished_at": None,
                    },
                )

    def finish(self, run_id: str, key: str, result: Any) -> None:
        now = time.time()
        with self.engine.begin() as conn:
            self._fence(conn)
            self._upsert_done.execute(
                conn,
                {
                    "run_id": run_id,
                    "key": key,
                    "state": DONE,
                    "result": self._dump(run_id, key, result),
                    "executor": self.executor_id,
                    "interruptions": 0,
                    "started_at": now,
                    "finished_at": now,
                },
            )

    def _fence(self, conn: sa.Connection) -> None:
        if self.executors.renew(conn, self.executor_id):
            return
        if self.executors.state_in(conn, self.executor_id) == STOPPED:
            # This process stopped itself (a run its queue handed over while it shut
            # down): nothing to fence, and exiting would kill whatever embeds it.
            raise ExecutorStopped(
                f"run not checkpointed: executor {self.executor_id} has stopped; the "
                "next process recovers it"
            )
        fenced()  # declared dead by another process: its runs belong to someone else

    # -- large results live in files ------------------------------------------------

    def _dump(self, run_id: str, key: str, result: Any) -> Any:
        text = json.dumps(result, ensure_ascii=False, default=str)
        if len(text) <= INLINE_LIMIT or self.in_rows_only:
            return result
        path = self.outputs_dir / file_name(run_id) / f"{file_name(key)}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        # relative to the outputs folder: a workspace moved or restored elsewhere (a
        # renamed folder, another volume) still resumes its runs
        return {FILE_REF: path.relative_to(self.outputs_dir).as_posix(), "bytes": len(text)}

    def _load(self, result: Any) -> Any:
        if not (isinstance(result, dict) and FILE_REF in result and len(result) == 2):
            return result
        stored = Path(result[FILE_REF])
        if stored.is_absolute():  # recorded before 2026-12-06, where the workspace was then
            stored = Path(*stored.parts[-2:])
        path = self.outputs_dir / stored
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise UserError(
                f"a finished step's result is missing: {path}",
                "restore the workspace's .openlam/outputs/ from where it was copied or "
                "backed up; without it the run cannot resume",
            ) from None
