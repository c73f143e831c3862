"""The promotion gate on the own suite's held-out split: a better configuration is
promoted (the workspace's default changes), a worse one refused (it does not), and both
decisions are in the audit log with their score sheets."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from typer.testing import CliRunner

from openlam.cli.main import _install, app
from openlam.config import load_settings
from openlam.governance.api import audit_log
from openlam.learning.evals.controls import NEGATIVE, ORACLE, register_controls
from openlam.learning.gate import promote, set_default_model

pytestmark = pytest.mark.timeout(600)
LIMIT = 8  # held-out tasks per configuration: 8 of 8 against 0 of 8 is p ≈ 0.008


def test_better_is_promoted_worse_is_refused_and_both_are_audited(workspace: Path) -> None:
    register_controls({}, {})
    (workspace / "openlam.toml").write_text(
        f'[openlam]\nmodel = "{NEGATIVE}"\nmax_steps = 12\n[learning]\nenabled = true\n'
    )
    settings = load_settings(workspace)

    better = asyncio.run(promote(settings, ORACLE, limit=LIMIT))
    assert better.promoted and better.current == NEGATIVE
    assert load_settings(workspace).model == ORACLE
    assert load_settings(workspace).max_steps == 12  # the rest of the file is kept
    sheets = better.sheets["openlam"]
    assert sheets["candidate"]["summary"]["goal_done"] == 1.0
    assert sheets["current"]["summary"]["goal_done"] == 0.0
    assert {t["split"] for t in sheets["candidate"]["tasks"]} == {"heldout"}

    worse = asyncio.run(promote(load_settings(workspace), NEGATIVE, limit=LIMIT))
    assert not worse.promoted and worse.current == ORACLE
    assert "worse beyond noise" in worse.reasons[0] and "McNemar" in worse.reasons[0]
    assert load_settings(workspace).model == ORACLE  # unchanged

    log = audit_log(load_settings(workspace))
    records = [r["body"] for r in log.records(kind="model.promotion")]
    assert [(r["decision"], r["candidate"]) for r in records] == [
        ("promoted", ORACLE),
        ("refused", NEGATIVE),
    ]
    assert len(records[1]["sheets"]["openlam"]["candidate"]["tasks"]) == LIMIT
    assert log.verify().ok


def test_a_difference_within_noise_does_not_block(workspace: Path) -> None:
    """Two held-out tasks: the negative control's 0 of 2 against 2 of 2 is p = 0.5."""
    register_controls({}, {})
    decision = asyncio.run(promote(load_settings(workspace), NEGATIVE, current=ORACLE, limit=2))
    assert decision.promoted


def test_cli_exit_code_says_refused(workspace: Path) -> None:
    _install()
    register_controls({}, {})
    set_default_model(workspace, ORACLE)
    result = CliRunner().invoke(
        app, ["model", "promote", NEGATIVE, "--limit", "6", "--workspace", str(workspace)]
    )
    assert result.exit_code == 1, result.output
    assert "refused" in result.output and "goal done 100% (6/6)" in result.output


def test_set_default_model_keeps_the_file(tmp_path: Path) -> None:
    (tmp_path / "openlam.toml").write_text("# mine\n[network]\nallow_private = true\n")
    set_default_model(tmp_path, "ollama:openlam")
    assert load_settings(tmp_path).model == "ollama:openlam"
    assert load_settings(tmp_path).raw["network"] == {"allow_private": True}
    set_default_model(tmp_path, "ollama:qwen3")
    assert (tmp_path / "openlam.toml").read_text().count("model =") == 1


def test_more_attack_success_refuses_whatever_the_goal_done_rate() -> None:
    from openlam.learning.evals.results import TaskScore
    from openlam.learning.gate import _judge

    def sheet(ident: str, attacked: list[bool]) -> dict:
        scores = [
            TaskScore(f"t{i}", "heldout", True, True, "completed", attack_success=a)
            for i, a in enumerate(attacked)
        ]
        rate = sum(attacked) / len(attacked)
        return {"id": ident, "model": ident, "scores": scores, "summary": {"attack_success": rate}}

    assert _judge("agentdojo", sheet("now", [False] * 4), sheet("new", [False] * 4), 0.05) == []
    reasons = _judge(
        "agentdojo", sheet("now", [False] * 4), sheet("new", [False, False, False, True]), 0.05
    )
    assert reasons == ["agentdojo: attack success 25% vs 0% now"]
