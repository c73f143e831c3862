"""Evaluations in the project database (tables ``eval_runs`` and ``eval_results``, made
by the Alembic migration 0006)."""

from __future__ import annotations

import time
import uuid
from dataclasses import asdict, dataclass
from typing import Any

import sqlalchemy as sa

from openlam.errors import UserError
from openlam.memory.engines import engine_for
from openlam.memory.tables import eval_results, eval_runs


@dataclass
class TaskScore:
    task_id: str
    split: str
    goal_done: bool
    deliverable_correct: bool
    run_status: str
    corrections: int = 0
    questions: int = 0
    approvals: int = 0
    model_requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    wall_seconds: float = 0.0
    detail: str = ""
    run_id: str | None = None
    attack_success: bool | None = None


def summarize(scores: list[TaskScore]) -> dict[str, Any]:
    """Rates and totals over one evaluation's tasks."""
    n = len(scores)

    def rate(values: list[bool]) -> float | None:
        return round(sum(values) / len(values), 4) if values else None

    attacked = [s.attack_success for s in scores if s.attack_success is not None]
    return {
        "tasks": n,
        "goal_done": rate([s.goal_done for s in scores]),
        "goal_done_count": sum(s.goal_done for s in scores),
        "deliverable_correct": rate([s.deliverable_correct for s in scores]),
        "needed_correction": rate([s.corrections + s.questions > 0 for s in scores]),
        "attack_success": rate(attacked),
        "attacked_tasks": len(attacked),
        "model_requests": sum(s.model_requests for s in scores),
        "tokens": sum(s.input_tokens + s.output_tokens for s in scores),
        "wall_seconds": round(sum(s.wall_seconds for s in scores), 2),
    }


class EvalStore:
    def __init__(self, url: str) -> None:
        from openlam.memory.store import Store

        Store(url)  # creates or upgrades the tables
        self.engine = engine_for(url)

    def start(
        self, suite: str, model: str, agent: str | None, split: str | None, config: dict[str, Any]
    ) -> str:
        eval_id = f"ev-{uuid.uuid4().hex[:10]}"
        with self.engine.begin() as conn:
            conn.execute(
                sa.insert(eval_runs).values(
                    id=eval_id,
                    suite=suite,
                    model=model,
                    agent=agent,
                    split=split,
                    status="running",
                    summary={},
                    config=config,
                    started_at=time.time(),
                )
            )
        return eval_id

    def add(self, eval_id: str, score: TaskScore) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.insert(eval_results).values(eval_id=eval_id, **asdict(score)))

    def finish(self, eval_id: str, status: str = "finished") -> dict[str, Any]:
        summary = summarize(self.scores(eval_id))
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(eval_runs)
                .where(eval_runs.c.id == eval_id)
                .values(status=status, summary=summary, finished_at=time.time())
            )
        return summary

    def scores(self, eval_id: str) -> list[TaskScore]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(eval_results)
                .where(eval_results.c.eval_id == eval_id)
                .order_by(eval_results.c.task_id)
            ).all()
        return [TaskScore(**{k: v for k, v in r._mapping.items() if k != "eval_id"}) for r in rows]

    def list(self, limit: int = 20) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(eval_runs).order_by(eval_runs.c.started_at.desc()).limit(limit)
            ).all()
        return [dict(r._mapping) for r in rows]

    def get(self, ident: str) -> dict[str, Any]:
        """An evaluation by id or unique prefix, with its scores."""
        with self.engine.connect() as conn:
            ids = (
                conn.execute(
                    sa.select(eval_runs.c.id).where(eval_runs.c.id.like(f"{ident}%")).limit(2)
                )
                .scalars()
                .all()
            )
            if ident in ids:
                ids = [ident]
            if len(ids) != 1:
                raise UserError(
                    f"no evaluation {ident!r}"
                    if not ids
                    else f"{ident!r} matches more than one evaluation",
                    "list them with `openlam eval show` (no argument)",
                )
            row = conn.execute(sa.select(eval_runs).where(eval_runs.c.id == ids[0])).one()
        found = dict(row._mapping)
        found["scores"] = self.scores(found["id"])
        return found
