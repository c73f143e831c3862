"""`openlam eval list|run|show|compare` as a user types them (each a process of its own,
as on a command line), and the mistakes a user makes, named with their fix."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.procs import openlam

pytestmark = pytest.mark.timeout(300)


def cli(workspace: Path, *args: str) -> tuple[int, str, str]:
    proc = openlam(workspace, *args)
    out, err = proc.communicate(timeout=240)
    return proc.returncode, out, err


def test_run_show_and_compare(workspace: Path) -> None:
    listing = subprocess.run(
        [sys.executable, "-m", "openlam", "eval", "list", "--json"],
        capture_output=True,
        text=True,
        timeout=240,
        check=True,
    )
    out = listing.stdout
    suites = {r["suite"]: r for r in json.loads(out)}
    assert suites["openlam"]["dev"] + suites["openlam"]["heldout"] >= 30

    code, out, err = cli(
        workspace,
        "eval",
        "run",
        "openlam",
        "--model",
        "eval:oracle",
        "--split",
        "dev",
        "--limit",
        "3",
    )
    assert code == 0, err
    assert "goal done 100% (3/3)" in out and "files-write (dev): done" in out
    code, out, err = cli(
        workspace,
        "eval",
        "run",
        "openlam",
        "--model",
        "eval:negative",
        "--split",
        "dev",
        "--limit",
        "3",
        "--json",
    )
    assert code == 0, err
    shown = json.loads(out)
    assert shown["summary"]["goal_done"] == 0.0 and len(shown["scores"]) == 3

    assert "eval:oracle dev: 100% goal done over 3 tasks" in cli(workspace, "eval", "show")[1]
    ids = [r["id"] for r in json.loads(cli(workspace, "eval", "show", "--json")[1])]
    one = cli(workspace, "eval", "show", ids[1][:7])[1]  # a unique prefix
    assert "files-write" in one and "goal done 100%" in one

    code, out, err = cli(workspace, "eval", "compare", ids[1], ids[0])
    assert code == 0, err
    assert "exact McNemar on 3 shared tasks (3 done only by A, 0 only by B)" in out
    assert "p = 0.25" in out and "no significant difference" in out


def test_mistakes_are_named(workspace: Path) -> None:
    code, _, err = cli(workspace, "eval", "run", "nosuch", "--model", "eval:oracle")
    assert code == 2 and "no evaluation suite 'nosuch'" in err and "fix: installed suites:" in err
    code, _, err = cli(
        workspace, "eval", "run", "openlam", "--model", "eval:oracle", "--split", "test"
    )
    assert code == 2 and "unknown split 'test'" in err and "dev, heldout" in err
    code, _, err = cli(workspace, "eval", "show", "ev-none")
    assert code == 2 and "no evaluation 'ev-none'" in err
    assert "Traceback" not in err
