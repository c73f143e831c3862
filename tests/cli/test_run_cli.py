"""The CLI as a user meets it: real processes, exit codes, JSON, runs list/show."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fakes.model_servers import FakeOpenAI


def openlam(workspace: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "openlam", *args], cwd=workspace,
                          env={**os.environ, "OPENLAM_WORKSPACE": str(workspace), **(env or {})},
                          capture_output=True, text=True, timeout=60)


def test_offline_goal_does_real_work(workspace: Path):
    done = openlam(workspace, "run", "write 'Hello from OpenLAM' to hello.md")
    assert done.returncode == 0, done.stderr
    assert (workspace / "hello.md").read_text() == "Hello from OpenLAM"
    assert "COMPLETED" in done.stdout and "Plan v1" in done.stdout
    assert "s1 files.write" in done.stdout and "Deliverables: hello.md" in done.stdout


def test_offline_declines_other_goals_and_says_how_to_connect_a_model(workspace: Path):
    done = openlam(workspace, "run", "research our competitors", "--json")
    assert done.returncode == 4
    outcome = json.loads(done.stdout)
    assert outcome["status"] == "blocked"
    assert outcome["gaps"][0]["kind"] == "model"
    assert "ollama serve" in outcome["gaps"][0]["why"]
    assert "Traceback" not in done.stderr


@pytest.mark.usefixtures("local_network")  # the test site is on loopback
def test_json_outcome_exit_codes_and_runs_commands(workspace: Path, site):
    plan = {"steps": [
        {"id": "s1", "action": "http.get", "args": {"url": f"{site.url}/page.html"}},
        {"id": "s2", "action": "files.write",
         "args": {"path": "page.html", "content": "${s1.output.text}"}},
        {"id": "s3", "action": "http.get", "args": {"url": f"{site.url}/error500"}},
    ]}
    with FakeOpenAI([plan, {"steps": [], "note": "the server keeps failing"}]) as server:
        env = {"OPENLAM_OPENAI_BASE_URL": f"{server.url}/v1", "OPENLAM_STEP_RETRIES": "0"}
        done = openlam(workspace, "run", "copy the page and check the status",
                       "--model", "openai:fake", "--agent", "operator", "--json",
                       "--max-steps", "5", env=env)
    assert done.returncode == 3, done.stderr  # partial
    outcome = json.loads(done.stdout)
    assert outcome["status"] == "partial"
    assert {s["id"]: s["status"] for s in outcome["steps"]} == \
        {"s1": "succeeded", "s2": "succeeded", "s3": "failed"}
    assert "HTTP 500" in outcome["summary"]
    run_id = outcome["run_id"]

    listed = openlam(workspace, "runs", "list")
    assert run_id in listed.stdout and "partial" in listed.stdout
    shown = openlam(workspace, "runs", "show", run_id[:9])
    assert shown.returncode == 0 and "HTTP 500" in shown.stdout and "page.html" in shown.stdout
    missing = openlam(workspace, "runs", "show", "run-nope")
    assert missing.returncode == 2 and "no run 'run-nope'" in missing.stderr


def test_bad_input_gets_a_clear_error(workspace: Path):
    bad_model = openlam(workspace, "run", "anything", "--model", "gpt4")
    assert bad_model.returncode == 2
    assert "not of the form PROVIDER:NAME" in bad_model.stderr
    assert "Traceback" not in bad_model.stderr
    (workspace / "openlam.toml").write_text("[openlam\nmodel = 1")
    bad_config = openlam(workspace, "runs", "list")
    assert bad_config.returncode == 2 and "is not valid TOML" in bad_config.stderr
    no_max = openlam(workspace, "run", "x", "--max-steps", "0")
    assert no_max.returncode == 2 and "max-steps" in no_max.stderr


def test_help_lists_the_commands(workspace: Path):
    done = openlam(workspace, "--help")
    assert done.returncode == 0
    for command in ("run", "runs", "init"):
        assert command in done.stdout
