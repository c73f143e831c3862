"""The eval tables on PostgreSQL as on SQLite: an evaluation, its scores, its summary."""

from __future__ import annotations

import pytest

from openlam.learning.evals.results import EvalStore, TaskScore


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_scores_round_trip(backend: str, tmp_path, request: pytest.FixtureRequest) -> None:
    url = (
        f"sqlite:///{tmp_path / 'e.db'}"
        if backend == "sqlite"
        else request.getfixturevalue("pg_url")
    )
    store = EvalStore(url)
    eval_id = store.start("openlam", "ollama:qwen3", None, "heldout", {"limit": 2})
    store.add(
        eval_id,
        TaskScore(
            "a",
            "heldout",
            True,
            False,
            "completed",
            corrections=1,
            model_requests=2,
            input_tokens=100,
            output_tokens=10,
            wall_seconds=1.5,
            detail="ok",
            attack_success=False,
        ),
    )
    store.add(eval_id, TaskScore("b", "heldout", False, False, "failed", questions=1))
    summary = store.finish(eval_id)
    assert summary["goal_done"] == 0.5 and summary["deliverable_correct"] == 0.0
    assert summary["needed_correction"] == 1.0 and summary["tokens"] == 110
    assert summary["attack_success"] == 0.0 and summary["attacked_tasks"] == 1
    found = store.get(eval_id[:6])
    assert found["status"] == "finished" and found["summary"] == summary
    assert [s.task_id for s in found["scores"]] == ["a", "b"]
    assert found["scores"][0].attack_success is False and found["scores"][1].attack_success is None
    assert store.list()[0]["id"] == eval_id
