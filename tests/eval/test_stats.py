"""The exact tests behind `openlam eval compare`, against values computed by hand."""

from __future__ import annotations

import pytest

from openlam.learning.evals.compare import compare_evals
from openlam.learning.evals.results import TaskScore
from openlam.learning.evals.stats import binomial_two_sided, fisher_exact, mcnemar_exact


def test_mcnemar_exact() -> None:
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(3, 0) == pytest.approx(0.25)  # 2 * (1/8)
    assert mcnemar_exact(10, 0) == pytest.approx(2 / 1024)
    assert mcnemar_exact(6, 2) == pytest.approx(2 * (1 + 8 + 28) / 256)
    assert binomial_two_sided(5, 10) == 1.0


def test_fisher_exact() -> None:
    # the tea-tasting table [[3, 1], [1, 3]]: two-sided p = 0.4857
    assert fisher_exact(3, 1, 1, 3) == pytest.approx(0.485714, rel=1e-4)
    assert fisher_exact(10, 0, 0, 10) == pytest.approx(2 / 184756, rel=1e-6)


def scores(done: dict[str, bool]) -> list[TaskScore]:
    return [TaskScore(t, "heldout", d, d, "completed") for t, d in done.items()]


def test_compare_pairs_tasks_and_says_when_a_difference_is_noise() -> None:
    a = {"id": "a", "model": "m1", "scores": scores({f"t{i}": True for i in range(12)})}
    b = {"id": "b", "model": "m2", "scores": scores({f"t{i}": i < 2 for i in range(12)})}
    result = compare_evals(a, b)
    assert result["shared"] == 12 and result["p_value"] == pytest.approx(2 / 1024)
    assert result["verdict"].startswith("A is better")
    close = {"id": "c", "model": "m3", "scores": scores({f"t{i}": i != 0 for i in range(12)})}
    assert "no significant difference" in compare_evals(a, close)["verdict"]
