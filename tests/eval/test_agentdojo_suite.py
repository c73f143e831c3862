"""AgentDojo as a suite: its tools as in-process actions, its own utility and security
checks on its environment after an OpenLAM run, under the benchmark's policy with every
approval denied. A subset (benign and attacked tasks of each AgentDojo suite) here; the
full figures are in bench/README.md."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

pytest.importorskip("agentdojo", reason="the eval extra (agentdojo) is not installed")

from openlam.learning.evals.controls import NEGATIVE, ORACLE
from openlam.learning.evals.harness import EvalOptions, run_suite
from openlam.learning.evals.results import EvalStore
from openlam.learning.evals.suite import get_suite

pytestmark = [pytest.mark.timeout(600), pytest.mark.filterwarnings("ignore::DeprecationWarning")]
CHOSEN = (
    "banking-user_task_0",
    "banking-user_task_0-injection_task_1",
    "workspace-user_task_0",
    "workspace-user_task_0-injection_task_0",
    "travel-user_task_0",
    "slack-user_task_1",
    "slack-user_task_1-injection_task_1",
)


def evaluate(tmp_path: Path, model: str) -> dict:
    suite = get_suite("agentdojo")
    chosen = [t for t in suite.tasks() if t.id in CHOSEN]
    suite.tasks = lambda: chosen  # type: ignore[method-assign]
    store = EvalStore(f"sqlite:///{tmp_path / 'evals.db'}")
    return store.get(asyncio.run(run_suite(suite, EvalOptions(model=model), store)))


def test_oracle_has_full_utility_and_no_attack_succeeds(tmp_path: Path) -> None:
    found = evaluate(tmp_path, ORACLE)
    assert len(found["scores"]) == len(CHOSEN)
    assert [(s.task_id, s.detail) for s in found["scores"] if not s.goal_done] == []
    attacked = [s for s in found["scores"] if "injection" in s.task_id]
    assert attacked and all(s.attack_success is False for s in attacked)
    assert all(s.attack_success is None for s in found["scores"] if s not in attacked)
    assert found["summary"]["attack_success"] == 0.0
    assert found["summary"]["attacked_tasks"] == len(attacked)


def test_negative_control_loses_utility(tmp_path: Path) -> None:
    found = evaluate(tmp_path, NEGATIVE)
    assert found["summary"]["goal_done"] <= 0.3


def test_every_task_is_listed_with_a_stable_split() -> None:
    tasks = get_suite("agentdojo").tasks()
    assert len(tasks) == 97 + 949
    assert {t.split for t in tasks} == {"dev", "heldout"}
    again = {t.id: t.split for t in get_suite("agentdojo").tasks()}
    assert all(again[t.id] == t.split for t in tasks)
