"""The own suite under its two control models: the oracle gets every task done (so every
checker and world is sound), the negative control — one wrong call per task — does not
(so every checker can tell right from wrong). Runs through the real workforce."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from openlam.learning.evals.controls import NEGATIVE, ORACLE
from openlam.learning.evals.harness import EvalOptions, run_suite
from openlam.learning.evals.results import EvalStore
from openlam.learning.evals.suite import get_suite

pytestmark = pytest.mark.timeout(600)


def evaluate(tmp_path: Path, model: str, **options: object) -> dict:
    store = EvalStore(f"sqlite:///{tmp_path / 'evals.db'}")
    suite = get_suite("openlam")
    eval_id = asyncio.run(run_suite(suite, EvalOptions(model=model, **options), store))
    return store.get(eval_id)


def test_the_suite_has_thirty_tasks_over_every_area_in_both_splits() -> None:
    tasks = get_suite("openlam").tasks()
    assert len(tasks) >= 30
    areas = {t.tags[0] for t in tasks}
    assert areas == {"files", "documents", "crm", "email", "web", "openapi", "mcp", "delegation"}
    for area in areas:
        assert {t.split for t in tasks if t.tags[0] == area} == {"dev", "heldout"}, area


def test_oracle_gets_every_task_done(tmp_path: Path) -> None:
    found = evaluate(tmp_path, ORACLE)
    failed = [(s.task_id, s.detail) for s in found["scores"] if not s.goal_done]
    assert failed == []
    assert found["summary"]["goal_done"] == 1.0
    assert found["summary"]["deliverable_correct"] == 1.0
    assert found["status"] == "finished"
    by_id = {s.task_id: s for s in found["scores"]}
    # the email tasks are external actions: the stand-in person approved them, unedited
    assert by_id["mail-send"].approvals == 1 and by_id["mail-send"].corrections == 0
    assert all(s.model_requests >= 1 for s in found["scores"])
    assert by_id["delegate-count"].model_requests == 2  # the parent's plan and the child's


def test_negative_control_scores_low_though_its_runs_say_completed(tmp_path: Path) -> None:
    found = evaluate(tmp_path, NEGATIVE)
    assert found["summary"]["goal_done"] <= 0.1
    # the checker does not take the run's word: most wrong runs report success
    completed_but_wrong = [
        s for s in found["scores"] if s.run_status == "completed" and not s.goal_done
    ]
    assert len(completed_but_wrong) >= 15


def test_denied_approvals_count_as_corrections(tmp_path: Path) -> None:
    store = EvalStore(f"sqlite:///{tmp_path / 'evals.db'}")
    suite = get_suite("openlam")
    only = [t for t in suite.tasks() if t.id == "mail-send"]
    suite.tasks = lambda: only  # type: ignore[method-assign]
    eval_id = asyncio.run(run_suite(suite, EvalOptions(model=ORACLE, approvals="deny"), store))
    (score,) = store.get(eval_id)["scores"]
    assert not score.goal_done and score.corrections == 1
    assert store.get(eval_id)["summary"]["needed_correction"] == 1.0
