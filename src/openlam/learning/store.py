"""What the workforce has learned, in the project database (tables ``learn_*``, made by
the Alembic migration 0003): playbooks, lessons from people and tool reliability."""

from __future__ import annotations

import hashlib
import statistics
import time
from typing import Any

import sqlalchemy as sa

from openlam.learning.gist import gist, gist_key
from openlam.learning.playbooks import Playbook
from openlam.memory.engines import engine_for
from openlam.memory.prepared import Prepared
from openlam.memory.tables import (
    learn_agent_record,
    learn_lessons,
    learn_playbooks,
    learn_tool_stats,
)

DEMOTE_AFTER = 2
"""A playbook whose replays failed this many times in a row (since its last success) is
no longer replayed; it stays listed, with its last failure, until forgotten."""
KEPT_RUNS = 20  # provenance: the latest runs a playbook came from or served
LATENCY_WINDOW = 100
KEPT_ERRORS = 5


# Built once: constructing a statement costs more than SQLite takes to run it, and these
# run for every run (consulted before its plan, counted after it).
_CANDIDATES = (
    sa.select(learn_playbooks)
    .where(
        learn_playbooks.c.gist_key == sa.bindparam("gist_key"),
        learn_playbooks.c.failing < DEMOTE_AFTER,
    )
    .order_by(learn_playbooks.c.successes.desc())
)
_RECENT_PLAYBOOKS = (
    sa.select(learn_playbooks)
    .order_by(learn_playbooks.c.updated_at.desc())
    .limit(sa.bindparam("limit"))
)
_AGENT_LESSONS = (
    sa.select(learn_lessons)
    .where(learn_lessons.c.agent == sa.bindparam("agent"))
    .order_by(learn_lessons.c.created_at.desc())
    .limit(sa.bindparam("limit"))
)
_STATS_OF = (
    sa.select(learn_tool_stats)
    .where(learn_tool_stats.c.action.in_(sa.bindparam("actions", expanding=True)))
    .order_by(learn_tool_stats.c.action)
)
_ALL_STATS = sa.select(learn_tool_stats).order_by(learn_tool_stats.c.action)
_RELIABILITY = sa.select(  # every consult: no latency windows to decode
    *(learn_tool_stats.c[c] for c in ("action", "source", "calls", "failures", "errors"))
).order_by(learn_tool_stats.c.action)
# A run that taught a playbook (built once: every successful new kind of run).
_LOCK_PLAYBOOK = (
    sa.select(learn_playbooks.c.runs)
    .where(learn_playbooks.c.id == sa.bindparam("pb_id"))
    .with_for_update()
)
_ADD_PLAYBOOK = sa.insert(learn_playbooks)
_COUNT_SUCCESS = (
    sa.update(learn_playbooks)
    .where(learn_playbooks.c.id == sa.bindparam("pb_id"))
    .values(
        successes=learn_playbooks.c.successes + 1,
        failing=0,
        runs=sa.bindparam("kept_runs", type_=learn_playbooks.c.runs.type),
        updated_at=sa.bindparam("now"),
    )
)
_APPROVALS_OF: Any = None  # see LearningStore.approvals_of
_LOCK_STATS = _STATS_OF.with_for_update()
_UPDATE_STATS = (
    sa.update(learn_tool_stats)
    .where(learn_tool_stats.c.action == sa.bindparam("the_action"))
    .values(
        {
            column: sa.bindparam(column, type_=learn_tool_stats.c[column].type)
            for column in ("source", "calls", "failures", "latencies", "errors", "updated_at")
        }
    )
)
_THIS_RECORD = (
    learn_agent_record.c.agent == sa.bindparam("agent"),
    learn_agent_record.c.gist_key == sa.bindparam("key"),
)
_LOCK_RECORD = sa.select(learn_agent_record.c.runs).where(*_THIS_RECORD).with_for_update()
_COUNT_RECORD = (
    sa.update(learn_agent_record)
    .where(*_THIS_RECORD)
    .values(
        successes=learn_agent_record.c.successes + sa.bindparam("ok"),
        failures=learn_agent_record.c.failures + sa.bindparam("failed"),
        runs=sa.bindparam("runs", type_=learn_agent_record.c.runs.type),
        updated_at=sa.bindparam("now"),
    )
)


def shape_key(shape: str) -> str:
    return hashlib.sha256(shape.encode()).hexdigest()


class LearningStore:
    def __init__(self, url: str) -> None:
        from sqlalchemy.dialects import postgresql, sqlite

        self.url = url
        self.engine = engine_for(url)
        insert = postgresql.insert if self.engine.dialect.name == "postgresql" else sqlite.insert
        # Every finished run counts its calls and its agent's record (memory/prepared.py).
        self._create_stats = Prepared(
            self.engine, insert(learn_tool_stats).on_conflict_do_nothing(index_elements=["action"])
        )
        self._update_stats = Prepared(self.engine, _UPDATE_STATS)
        self._create_record = Prepared(
            self.engine,
            insert(learn_agent_record).on_conflict_do_nothing(index_elements=["agent", "gist_key"]),
        )
        self._count_record = Prepared(self.engine, _COUNT_RECORD)

    # -- playbooks ------------------------------------------------------------------

    def candidates(self, shape: str) -> list[Playbook]:
        """The playbooks still in use of this goal shape, then those of a rewording of
        it (the same gist), most successful first (one indexed lookup)."""
        with self.engine.connect() as conn:
            rows = conn.execute(_CANDIDATES, {"gist_key": gist_key(shape)}).all()
        found = [_playbook(r._mapping) for r in rows]
        return sorted(found, key=lambda pb: pb.shape != shape)  # stable: exact shape first

    def playbooks(self, limit: int | None = None) -> list[Playbook]:
        """Every playbook (or the ``limit`` most recently used), newest first."""
        with self.engine.connect() as conn:
            rows = (
                conn.execute(_RECENT_PLAYBOOKS, {"limit": limit}).all()
                if limit
                else conn.execute(
                    sa.select(learn_playbooks).order_by(learn_playbooks.c.updated_at.desc())
                ).all()
            )
        return [_playbook(r._mapping) for r in rows]

    def get_playbook(self, ident: str) -> Playbook | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(learn_playbooks).where(learn_playbooks.c.id == ident)
            ).first()
        return _playbook(row._mapping) if row else None

    def learned(self, pb: Playbook, run_id: str) -> None:
        """A successful run taught ``pb``: add it, or count one more success."""
        with self.engine.begin() as conn:
            _learned(conn, pb, run_id)

    def replayed(self, ident: str, run_id: str, failure: str | None) -> None:
        """Count a replay of playbook ``ident``: a success resets its failures, a
        failure counts towards its demotion."""
        now = time.time()
        with self.engine.begin() as conn:
            row = conn.execute(
                sa.select(learn_playbooks.c.runs)
                .where(learn_playbooks.c.id == ident)
                .with_for_update()
            ).first()
            if row is None or run_id in row.runs:  # forgotten meanwhile, or counted
                return
            runs = [*row.runs, run_id][-KEPT_RUNS:]
            c = learn_playbooks.c
            values: dict[str, Any] = {"runs": runs, "updated_at": now}
            if failure is None:
                values.update(successes=c.successes + 1, failing=0)
            else:
                values.update(
                    failures=c.failures + 1, failing=c.failing + 1, last_failure=failure[:500]
                )
            conn.execute(sa.update(learn_playbooks).where(c.id == ident).values(**values))

    def forget(self, ident: str) -> str | None:
        """Remove a playbook or lesson by id (or unique prefix); what was removed."""
        for table, what in ((learn_playbooks, "playbook"), (learn_lessons, "lesson")):
            with self.engine.begin() as conn:
                ids = (
                    conn.execute(
                        sa.select(table.c.id).where(table.c.id.startswith(ident, autoescape=True))
                    )
                    .scalars()
                    .all()
                )
                if len(ids) == 1:
                    conn.execute(sa.delete(table).where(table.c.id == ids[0]))
                    return f"{what} {ids[0]}"
        return None

    # -- lessons --------------------------------------------------------------------

    def add_lesson(
        self, *, agent: str, action: str, kind: str, text: str, run_id: str, step_id: str
    ) -> None:
        ident = "ls-" + hashlib.sha256(f"{run_id}\0{step_id}\0{kind}".encode()).hexdigest()[:10]
        with self.engine.begin() as conn:
            if (
                conn.execute(
                    sa.select(learn_lessons.c.id).where(learn_lessons.c.id == ident)
                ).first()
                is None
            ):
                conn.execute(
                    sa.insert(learn_lessons).values(
                        id=ident,
                        agent=agent,
                        action=action,
                        kind=kind,
                        text=text,
                        run_id=run_id,
                        created_at=time.time(),
                    )
                )

    def lessons(self, agent: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            if agent is not None:
                return _lessons_of(conn, agent, limit)
            query = sa.select(learn_lessons).order_by(learn_lessons.c.created_at.desc())
            return [dict(r._mapping) for r in conn.execute(query.limit(limit))]

    def consult_reads(
        self, agent: str, lessons: int, playbooks: int
    ) -> tuple[list[Playbook], list[dict[str, Any]], list[dict[str, Any]]]:
        """What a consultation reads before every plan, on one connection: the
        ``playbooks`` most recently used, the agent's latest ``lessons``, and every
        action's reliability (calls, failures, commonest errors; no latencies)."""
        with self.engine.connect() as conn:
            recent = [
                _playbook(r._mapping) for r in conn.execute(_RECENT_PLAYBOOKS, {"limit": playbooks})
            ]
            taught = _lessons_of(conn, agent, lessons)
            reliability = [_rated(dict(r._mapping)) for r in conn.execute(_RELIABILITY)]
        return recent, taught, reliability

    def approvals_of(self, run_id: str) -> list[Any]:
        """The run's decided approvals (read only: expiring others' is not our job)."""
        from openlam.governance.approvals import Approval
        from openlam.governance.db import approvals
        from openlam.governance.db import engine_for as governance_engine

        global _APPROVALS_OF
        if _APPROVALS_OF is None:  # built once (governance's tables load on first use)
            _APPROVALS_OF = sa.select(approvals).where(approvals.c.run_id == sa.bindparam("run_id"))
        with governance_engine(self.url).connect() as conn:  # its tables made on first use
            rows = conn.execute(_APPROVALS_OF, {"run_id": run_id}).all()
        return [Approval.from_row(dict(r._mapping)) for r in rows]

    def answer_of(self, run_id: str, step_id: str) -> dict[str, str] | None:
        """A person's answer to a question the run asked (ask_human, human.ask)."""
        from openlam.memory.store import Store

        return Store(self.url).answer_of(run_id, step_id)

    # -- tool reliability -----------------------------------------------------------

    def record_finished(
        self,
        calls: list[tuple[str, str, bool, float, str | None]],
        run: tuple[str, str, bool, str] | None,
        taught: tuple[Playbook, str] | None = None,
    ) -> None:
        """A finished run's calls (as :meth:`record_calls`), if given its
        ``(agent, goal_shape, succeeded, run_id)`` record (as :meth:`record_run`) and the
        ``(playbook, run_id)`` it taught (as :meth:`learned`), in one transaction: the
        stats rows are locked before the record's, and that before the playbook's, in
        every run."""
        with self.engine.begin() as conn:
            self._record_calls(conn, calls)
            if run is not None:
                self._record_run(conn, *run)
            if taught is not None:
                _learned(conn, *taught)

    def record_calls(self, calls: list[tuple[str, str, bool, float, str | None]]) -> None:
        """(action, source, succeeded, duration_ms, error) of each step a run ran."""
        with self.engine.begin() as conn:
            self._record_calls(conn, calls)

    def _record_calls(
        self, conn: sa.Connection, calls: list[tuple[str, str, bool, float, str | None]]
    ) -> None:
        now = time.time()
        by_action: dict[str, list[tuple[str, bool, float, str | None]]] = {}
        for action, source, ok, ms, error in calls:
            by_action.setdefault(action, []).append((source, ok, ms, error))
        if not by_action:
            return
        names = sorted(by_action)  # one lock order for every run: no deadlock between two
        # Runs finishing at once (a delegation tree, several workers) count the same
        # actions: create their rows if absent first, so the read below is of rows that
        # exist and are locked (on SQLite: the write lock is held from here).
        self._create_stats.execute_many(
            conn,
            [
                {
                    "action": a,
                    "source": by_action[a][0][0],
                    "calls": 0,
                    "failures": 0,
                    "latencies": [],
                    "errors": {},
                    "updated_at": now,
                }
                for a in names
            ],
        )
        rows = {r.action: r for r in conn.execute(_LOCK_STATS, {"actions": names})}
        updates = []
        for action in names:
            row = rows.get(action)
            latencies = list(row.latencies) if row else []
            errors = dict(row.errors) if row else {}
            count, failures = (row.calls, row.failures) if row else (0, 0)
            for _source, ok, ms, error in by_action[action]:
                latencies.append(round(ms, 1))
                if error:
                    key = error[:160]
                    errors[key] = errors.get(key, 0) + 1
                    errors = dict(sorted(errors.items(), key=lambda kv: -kv[1])[:KEPT_ERRORS])
                count, failures = count + 1, failures + (not ok)
            updates.append(
                {
                    "the_action": action,
                    "source": by_action[action][-1][0],
                    "latencies": latencies[-LATENCY_WINDOW:],
                    "errors": errors,
                    "updated_at": now,
                    "calls": count,
                    "failures": failures,
                }
            )
        self._update_stats.execute_many(conn, updates)

    def tool_stats(self, actions: list[str] | None = None) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = [
                dict(r._mapping)
                for r in (
                    conn.execute(_STATS_OF, {"actions": actions})
                    if actions is not None
                    else conn.execute(_ALL_STATS)
                )
            ]
        for row in rows:
            _rated(row)
            row["p50_ms"], row["p95_ms"] = _percentiles(row["latencies"])
        return rows

    def source_stats(self, rows: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
        """Reliability per source of actions (builtin, each MCP server, OpenAPI service…):
        its actions' calls added up, latency percentiles over their recent calls
        together, and the commonest errors across them."""
        by: dict[str, dict[str, Any]] = {}
        for t in self.tool_stats() if rows is None else rows:
            s = by.setdefault(
                t["source"],
                {
                    "source": t["source"],
                    "actions": 0,
                    "calls": 0,
                    "failures": 0,
                    "latencies": [],
                    "errors": {},
                },
            )
            s["actions"] += 1
            s["calls"] += t["calls"]
            s["failures"] += t["failures"]
            s["latencies"] = s["latencies"] + t.get("latencies", [])
            for error, n in t["errors"].items():
                s["errors"][error] = s["errors"].get(error, 0) + n
        out = []
        for s in sorted(by.values(), key=lambda s: s["source"]):
            _rated(s)
            s["p50_ms"], s["p95_ms"] = _percentiles(s.pop("latencies"))
            s["errors"] = dict(sorted(s["errors"].items(), key=lambda kv: -kv[1])[:KEPT_ERRORS])
            out.append(s)
        return out

    # -- each agent's record per kind of goal (routing) ------------------------------

    def record_run(self, agent: str, goal_shape: str, succeeded: bool, run_id: str) -> None:
        """Count a finished run of ``agent`` towards its record on goals of this gist."""
        with self.engine.begin() as conn:
            self._record_run(conn, agent, goal_shape, succeeded, run_id)

    def _record_run(
        self, conn: sa.Connection, agent: str, goal_shape: str, succeeded: bool, run_id: str
    ) -> None:
        key, now = gist_key(goal_shape), time.time()
        self._create_record.execute(  # as record_calls: the row first, then locked
            conn,
            {
                "agent": agent,
                "gist_key": key,
                "gist": gist(goal_shape),
                "successes": 0,
                "failures": 0,
                "runs": [],
                "updated_at": now,
            },
        )
        row = conn.execute(_LOCK_RECORD, {"agent": agent, "key": key}).first()
        if row is None or run_id in row.runs:
            return  # a resumed run is counted once
        self._count_record.execute(
            conn,
            {
                "agent": agent,
                "key": key,
                "ok": int(succeeded),
                "failed": int(not succeeded),
                "runs": [*row.runs, run_id][-KEPT_RUNS:],
                "now": now,
            },
        )

    def agent_records(self, goal_shape: str) -> dict[str, tuple[int, int]]:
        """agent → (successes, failures) of its runs on goals of this gist."""
        t = learn_agent_record
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(t.c.agent, t.c.successes, t.c.failures).where(
                    t.c.gist_key == gist_key(goal_shape)
                )
            ).all()
        return {r.agent: (r.successes, r.failures) for r in rows}

    def all_agent_records(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [
                dict(r._mapping)
                for r in conn.execute(
                    sa.select(learn_agent_record).order_by(
                        learn_agent_record.c.gist, learn_agent_record.c.agent
                    )
                )
            ]

    # -- everything, for review -----------------------------------------------------

    def export(self) -> dict[str, Any]:
        return {
            "playbooks": [pb.__dict__ for pb in self.playbooks()],
            "lessons": self.lessons(limit=10_000),
            "tools": [{k: v for k, v in t.items() if k != "latencies"} for t in self.tool_stats()],
        }


def playbook_row(pb: Playbook, run_id: str, now: float) -> dict[str, Any]:
    """The learn_playbooks row of a playbook first taught by ``run_id``."""
    return {
        "id": pb.id,
        "shape_key": shape_key(pb.shape),
        "gist_key": gist_key(pb.shape),
        "shape": pb.shape,
        "pattern": pb.pattern,
        "params": pb.params,
        "steps": pb.steps,
        "example": pb.example,
        "agent": pb.agent,
        "model": pb.model,
        "runs": [run_id],
        "successes": 1,
        "failures": 0,
        "failing": 0,
        "last_failure": None,
        "created_at": now,
        "updated_at": now,
    }


def _learned(conn: sa.Connection, pb: Playbook, run_id: str) -> None:
    now = time.time()
    row = conn.execute(_LOCK_PLAYBOOK, {"pb_id": pb.id}).first()
    if row is None:
        conn.execute(_ADD_PLAYBOOK, playbook_row(pb, run_id, now))
    elif run_id not in row.runs:
        conn.execute(
            _COUNT_SUCCESS,
            {"pb_id": pb.id, "kept_runs": [*row.runs, run_id][-KEPT_RUNS:], "now": now},
        )


def _lessons_of(conn: sa.Connection, agent: str, limit: int) -> list[dict[str, Any]]:
    return [
        dict(r._mapping) for r in conn.execute(_AGENT_LESSONS, {"agent": agent, "limit": limit})
    ]


def _rated(stats: dict[str, Any]) -> dict[str, Any]:
    stats["success_rate"] = 1 - stats["failures"] / stats["calls"] if stats["calls"] else 1.0
    return stats


def _percentiles(values: list[float]) -> tuple[float, float]:
    if not values:
        return 0.0, 0.0
    if len(values) == 1:
        return values[0], values[0]
    q = statistics.quantiles(values, n=20, method="inclusive")
    return round(statistics.median(values), 1), round(q[18], 1)


def _playbook(row: Any) -> Playbook:
    return Playbook(
        id=row["id"],
        shape=row["shape"],
        pattern=row["pattern"],
        params=dict(row["params"]),
        steps=list(row["steps"]),
        agent=row["agent"],
        model=row["model"],
        runs=list(row["runs"]),
        successes=row["successes"],
        failures=row["failures"],
        failing=row["failing"],
        last_failure=row["last_failure"],
        example=row["example"],
    )
