"""The project database: runs, their steps and outcomes, and experience.

SQLite in the workspace by default; PostgreSQL with ``OPENLAM_DATABASE_URL``. The schema
is created and upgraded by Alembic on open.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError

from openlam.errors import UserError
from openlam.memory.engines import engine_for, open_failed, opened, schema_lock
from openlam.memory.prepared import Prepared
from openlam.memory.tables import cancellations, experiences, questions, runs, steps

if TYPE_CHECKING:
    from openlam.loop.runner import RunRequest
    from openlam.loop.state import Outcome, RunState

MIGRATIONS = Path(__file__).parent / "migrations"
_REVISION = re.compile(r'^(down_revision|revision)\s*=\s*["\']([^"\']+)["\']', re.M)
STORED_OUTPUT_LIMIT = 64 * 1024  # characters of JSON kept per step output in runs/steps rows
PREVIEW = 2000
UNFINISHED = ("queued", "running", "interrupted")


def _cancel_reason(depth: int) -> sa.Select:
    """Whether a run or one of the ``depth - 1`` runs above it was cancelled."""
    tree = [sa.bindparam(f"run{i}") for i in range(depth)]
    return (
        sa.select(cancellations.c.reason, cancellations.c.requested_by)
        .where(cancellations.c.run_id.in_(tree))
        .order_by(cancellations.c.requested_at)
        .limit(1)
    )


def capped(output: Any) -> Any:
    """A step output as stored in the runs and steps tables: whole when small, else a
    preview (the full output stays in the run's journal, under .openlam/outputs/)."""
    if output is None or isinstance(output, bool | int | float):
        return output
    text = (
        output if isinstance(output, str) else json.dumps(output, ensure_ascii=False, default=str)
    )
    if len(text) <= STORED_OUTPUT_LIMIT:
        return output
    return {"truncated": True, "chars": len(text), "preview": text[:PREVIEW]}


class Store:
    def __init__(self, url: str) -> None:
        self.url = url
        self._upserts: dict[str, Prepared] = {}
        self._cancel_checks: dict[int, Prepared] = {}  # by tree depth
        try:
            self.engine = opened(engine_for(url))
        except UserError:
            raise
        except Exception as exc:  # engine_for creates the tables on first use
            raise open_failed(url, exc) from None
        self.migrate()

    def migrate(self) -> None:
        if _at_head(self.engine):  # the usual case: no need to load alembic (~0.2 s)
            return
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with self.engine.begin() as conn:
            schema_lock(conn)
            config.attributes["connection"] = conn
            command.upgrade(config, "head")

    def close(self) -> None:
        # the engine is shared (engines.engine_for): disposing closes its idle connections
        # (releasing the database file), and whoever uses it next simply reconnects
        self.engine.dispose()

    # -- writes ---------------------------------------------------------------------

    def save_run(self, request: RunRequest, state: RunState, outcome: Outcome | None) -> None:
        now = time.time()
        row = {
            "id": request.run_id,
            "parent_id": request.parent_id,
            "goal": request.goal,
            "agent": request.agent.id,
            "model": request.model,
            "status": outcome.status.value if outcome else "running",
            "summary": outcome.summary if outcome else "",
            "outcome": self.stored_outcome(outcome) if outcome else None,
            "request": request.model_dump(mode="json"),
            "created_at": request.started_at,
            "updated_at": now,
        }
        step_rows = [
            {
                "run_id": request.run_id,
                "step_id": r.id,
                "plan_version": r.plan_version,
                "action": r.action,
                "args": r.args,
                "status": r.status.value,
                "output": capped(r.output),
                "error": r.error,
                "attempts": r.attempts,
                "idempotency_key": r.idempotency_key,
                "duration_ms": r.duration_ms,
            }
            for r in state.records.values()
        ]
        with self.engine.begin() as conn:
            self._upsert(conn, runs, [row], ["id"])
            if step_rows:
                self._upsert(conn, steps, step_rows, ["run_id", "step_id"])

    def claim_queued(self, request: RunRequest, queue: str) -> bool:
        """List a submitted run as waiting in ``queue``; False if a run with its id exists
        already (the same event or schedule firing seen twice)."""
        now = time.time()
        row = {
            "id": request.run_id,
            "parent_id": request.parent_id,
            "goal": request.goal,
            "agent": request.agent.id,
            "model": request.model,
            "status": "queued",
            "summary": f"waiting in queue {queue}",
            "outcome": None,
            "request": request.model_dump(mode="json"),
            "created_at": request.started_at,
            "updated_at": now,
        }
        insert = (postgresql.insert if self.engine.dialect.name == "postgresql" else sqlite.insert)(
            runs
        ).on_conflict_do_nothing(index_elements=["id"])
        # RETURNING, not rowcount: psycopg reports -1 for this statement
        with self.engine.begin() as conn:
            return conn.execute(insert.values(**row).returning(runs.c.id)).first() is not None

    def queued_before(self, cutoff: float) -> list[str]:
        """Ids of the runs listed as queued, last updated before ``cutoff`` (epoch)."""
        with self.engine.connect() as conn:
            return list(
                conn.execute(
                    sa.select(runs.c.id).where(
                        runs.c.status == "queued", runs.c.updated_at < cutoff
                    )
                ).scalars()
            )

    def forget(self, run_id: str) -> None:
        """Remove a run that never started (its submission failed)."""
        with self.engine.begin() as conn:
            conn.execute(sa.delete(runs).where(runs.c.id == run_id, runs.c.status == "queued"))

    @staticmethod
    def stored_outcome(outcome: Outcome) -> dict[str, Any]:
        """The outcome as JSON, with step outputs too large to store inline capped."""
        data = outcome.model_dump(mode="json")
        for step in data["steps"]:
            step["output"] = capped(step["output"])
        return data

    def remember(self, outcome: Outcome, _experience: dict[str, Any]) -> None:
        """The learn hook: keep the goal and the plan that was carried out, with its status."""
        plan = [
            s.model_dump(mode="json", include={"id", "action", "args", "depends_on"})
            for s in outcome.steps
        ]
        with self.engine.begin() as conn:
            self._upsert(
                conn,
                experiences,
                [
                    {
                        "run_id": outcome.run_id,
                        "goal": outcome.goal,
                        "agent": outcome.agent,
                        "status": outcome.status.value,
                        "plan": plan,
                        "created_at": time.time(),
                    }
                ],
                ["run_id"],
            )

    def _upsert(
        self, conn: sa.Connection, table: sa.Table, rows: list[dict[str, Any]], keys: list[str]
    ) -> None:
        statement = self._upserts.get(table.name)
        if statement is None:  # every run writes these: compiled once (memory/prepared.py)
            insert = (
                postgresql.insert if self.engine.dialect.name == "postgresql" else sqlite.insert
            )(table)
            update = {c.name: insert.excluded[c.name] for c in table.columns if c.name not in keys}
            statement = Prepared(
                self.engine, insert.on_conflict_do_update(index_elements=keys, set_=update)
            )
            self._upserts[table.name] = statement
        statement.execute_many(conn, rows)

    # -- reads ----------------------------------------------------------------------

    def list_runs(
        self,
        limit: int = 20,
        status: str | None = None,
        *,
        agent: str | None = None,
        since: float | None = None,
        offset: int = 0,
        top_level: bool = False,
    ) -> list[dict[str, Any]]:
        """Runs, newest first: with ``status``, of ``agent``, started at or after
        ``since`` (epoch seconds), only those no other run delegated (``top_level``),
        skipping the first ``offset``."""
        query = sa.select(
            runs.c.id,
            runs.c.parent_id,
            runs.c.goal,
            runs.c.agent,
            runs.c.status,
            runs.c.summary,
            runs.c.created_at,
            runs.c.updated_at,
        )
        if status:
            query = query.where(runs.c.status == status)
        if agent:
            query = query.where(runs.c.agent == agent)
        if since is not None:
            query = query.where(runs.c.created_at >= since)
        if top_level:
            query = query.where(runs.c.parent_id.is_(None))
        # newest first; the id orders runs started at the same moment (a run and the
        # children it delegated at once), so pages never overlap
        query = query.order_by(runs.c.created_at.desc(), runs.c.id.desc())
        query = query.limit(limit).offset(offset)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def get_run(self, run_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(runs).where(runs.c.id == run_id)).first()
            if row is None:
                matches = (
                    conn.execute(sa.select(runs.c.id).where(runs.c.id.like(f"{run_id}%")).limit(2))
                    .scalars()
                    .all()
                )
                if len(matches) != 1:
                    return None
                row = conn.execute(sa.select(runs).where(runs.c.id == matches[0])).first()
                assert row is not None
            run = dict(row._mapping)
            run["steps"] = [
                dict(s._mapping)
                for s in conn.execute(
                    sa.select(steps)
                    .where(steps.c.run_id == run["id"])
                    .order_by(steps.c.plan_version, steps.c.step_id)
                )
            ]
            run["children"] = [
                dict(c._mapping)
                for c in conn.execute(
                    sa.select(runs.c.id, runs.c.agent, runs.c.status, runs.c.goal)
                    .where(runs.c.parent_id == run["id"])
                    .order_by(runs.c.created_at)
                )
            ]
        return run

    def unfinished_runs(self) -> list[str]:
        with self.engine.connect() as conn:
            return list(
                conn.execute(
                    sa.select(runs.c.id).where(runs.c.status.in_(("running", "interrupted")))
                ).scalars()
            )

    def mark_interrupted(self, run_ids: list[str]) -> None:
        """Runs whose process stopped before they finished (they resume later)."""
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(runs)
                .where(runs.c.id.in_(run_ids), runs.c.status == "running")
                .values(status="interrupted", updated_at=time.time())
            )

    # -- stopping runs ---------------------------------------------------------------

    def request_cancel(self, run_id: str, reason: str, by: str) -> None:
        """Ask a run — and so its delegated children — to stop (idempotent)."""
        with self.engine.begin() as conn:
            if (
                conn.execute(
                    sa.select(cancellations.c.run_id).where(cancellations.c.run_id == run_id)
                ).first()
                is None
            ):
                conn.execute(
                    sa.insert(cancellations).values(
                        run_id=run_id, reason=reason, requested_by=by, requested_at=time.time()
                    )
                )

    def cancel_reason(self, run_id: str) -> str | None:
        """Why this run must stop, if it or a run above it in its tree was cancelled."""
        parts = run_id.split(".")
        check = self._cancel_checks.get(len(parts))
        if check is None:  # asked before every plan and batch of steps: compiled once
            check = self._cancel_checks[len(parts)] = Prepared(
                self.engine, _cancel_reason(len(parts))
            )
        tree = {f"run{i - 1}": ".".join(parts[:i]) for i in range(1, len(parts) + 1)}
        with self.engine.connect() as conn:
            row = check.first(conn, tree)
        return f"{row[0]} (by {row[1]})" if row else None

    def mark_cancelled(self, run_id: str, summary: str) -> None:
        self._end(run_id, "cancelled", summary)

    def mark_failed(self, run_id: str, summary: str) -> None:
        """A run whose workflow stopped on an error the loop could not turn into an
        outcome: it ends failed, saying why, rather than stay ``running`` for ever."""
        self._end(run_id, "failed", summary)

    def _end(self, run_id: str, status: str, summary: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(runs)
                .where(runs.c.id == run_id, runs.c.status.in_(UNFINISHED))
                .values(status=status, summary=summary, updated_at=time.time())
            )

    def count_by_status(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(runs.c.status, sa.func.count()).group_by(runs.c.status)
            ).all()
        return {status: count for status, count in rows}

    # -- questions a run asks a person ------------------------------------------------

    def ask(self, run_id: str, step_id: str, question: str) -> float:
        """Record a question (once: a replay keeps the first); returns when it was asked."""
        with self.engine.begin() as conn:
            asked = conn.execute(
                sa.select(questions.c.asked_at).where(
                    questions.c.run_id == run_id, questions.c.step_id == step_id
                )
            ).scalar()
            if asked is None:
                asked = time.time()
                conn.execute(
                    sa.insert(questions).values(
                        run_id=run_id, step_id=step_id, question=question, asked_at=asked
                    )
                )
        return asked

    def answer_of(self, run_id: str, step_id: str) -> dict[str, str] | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(questions.c.answer, questions.c.answered_by).where(
                    questions.c.run_id == run_id,
                    questions.c.step_id == step_id,
                    questions.c.answer.is_not(None),
                )
            ).first()
        return {"answer": row.answer, "by": row.answered_by or ""} if row else None

    def answer(self, run_id: str, step_id: str, text: str, by: str) -> bool:
        """Answer a waiting question; False if there is none or it is answered already."""
        with self.engine.begin() as conn:
            done = conn.execute(
                sa.update(questions)
                .where(
                    questions.c.run_id == run_id,
                    questions.c.step_id == step_id,
                    questions.c.answer.is_(None),
                )
                .values(answer=text, answered_by=by, answered_at=time.time())
            )
        return done.rowcount == 1


def head_revision() -> str | None:
    """The newest migration's revision, read from the scripts (the one no other revises)."""
    revisions, revised = set(), set()
    for script in (MIGRATIONS / "versions").glob("*.py"):
        for kind, value in _REVISION.findall(script.read_text(encoding="utf-8")):
            (revisions if kind == "revision" else revised).add(value)
    heads = revisions - revised
    return heads.pop() if len(heads) == 1 else None


def _at_head(engine: sa.Engine) -> bool:
    """Whether the database's schema is already at the newest migration."""
    head = head_revision()
    if head is None:
        return False
    try:
        with engine.connect() as conn:
            found = conn.exec_driver_sql("SELECT version_num FROM alembic_version").all()
    except DBAPIError:  # a new database: no version table yet
        return False
    return [row[0] for row in found] == [head]
