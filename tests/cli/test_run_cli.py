"""The CLI as a user meets it: real processes, exit codes, JSON, runs list/show."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fakes.model_servers import FakeOllama, FakeOpenAI


def openlam(workspace: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "openlam", *args],
        cwd=workspace,
        env={**os.environ, "OPENLAM_WORKSPACE": str(workspace), **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


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
    plan = {
        "steps": [
            {"id": "s1", "action": "http.get", "args": {"url": f"{site.url}/page.html"}},
            {
                "id": "s2",
                "action": "files.write",
                "args": {"path": "page.html", "content": "${s1.output.text}"},
            },
            {"id": "s3", "action": "http.get", "args": {"url": f"{site.url}/error500"}},
        ]
    }
    with FakeOpenAI([plan, {"steps": [], "note": "the server keeps failing"}]) as server:
        env = {"OPENLAM_OPENAI_BASE_URL": f"{server.url}/v1", "OPENLAM_STEP_RETRIES": "0"}
        done = openlam(
            workspace,
            "run",
            "copy the page and check the status",
            "--model",
            "openai:fake",
            "--agent",
            "operator",
            "--json",
            "--max-steps",
            "5",
            env=env,
        )
    assert done.returncode == 3, done.stderr  # partial
    outcome = json.loads(done.stdout)
    assert outcome["status"] == "partial"
    assert {s["id"]: s["status"] for s in outcome["steps"]} == {
        "s1": "succeeded",
        "s2": "succeeded",
        "s3": "failed",
    }
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


# -- text that looks like markup, narrow terminals, hung models, Ctrl-C (issue 8) -----------

MARKUP_GOAL = "check [/] [bold]notes[/bold] under [search] in openlam.toml"


def _markup_run(workspace: Path, site, env: dict | None = None) -> subprocess.CompletedProcess:
    """A run whose goal, tool output and error all look like rich markup."""
    (workspace / "notes.md").write_text("see [/] and [bold]x[/bold] under [search]")
    plan = {
        "steps": [
            {"id": "s1", "action": "files.read", "args": {"path": "notes.md"}},
            {"id": "s2", "action": "files.read", "args": {"path": "missing[/]x.md"}},
        ]
    }
    with FakeOpenAI([plan, {"steps": [], "note": "nothing [/] more"}]) as server:
        return openlam(
            workspace,
            "run",
            MARKUP_GOAL,
            "--model",
            "openai:fake",
            "--agent",
            "operator",
            env={"OPENLAM_OPENAI_BASE_URL": f"{server.url}/v1", **(env or {})},
        )


def test_markup_in_goal_tool_output_and_errors_is_printed_literally(workspace: Path, site):
    done = _markup_run(workspace, site)
    assert done.returncode == 3, done.stdout + done.stderr  # partial: s2 failed
    assert "Traceback" not in done.stderr and "MarkupError" not in done.stderr
    assert f"Goal: {MARKUP_GOAL}" in done.stdout
    assert "see [/] and [bold]x[/bold] under [search]" in done.stdout  # the tool's output
    assert "missing[/]x.md" in done.stdout  # in the plan, the step line and the error
    run_id = done.stdout.split(", run ", 1)[1].split(")", 1)[0]
    shown = openlam(workspace, "runs", "show", run_id)
    assert shown.returncode == 0, shown.stderr
    for literal in ("see [/] and", "[bold]x[/bold]", "under [search]", "missing[/]x.md"):
        assert literal in shown.stdout, literal


def test_runs_list_prints_markup_in_goals_literally_at_any_width(workspace: Path, site):
    done = _markup_run(workspace, site, env={"COLUMNS": "30"})
    assert done.returncode == 3, done.stdout + done.stderr
    assert f"Goal: {MARKUP_GOAL}" in done.stdout  # one line, not wrapped at 30 columns
    rule = next(line for line in done.stdout.splitlines() if "PARTIAL" in line)
    assert len(rule) < 100
    for columns in ("30", "200"):
        listed = openlam(workspace, "runs", "list", env={"COLUMNS": columns})
        assert listed.returncode == 0, listed.stderr
        row = next(line for line in listed.stdout.splitlines() if "partial" in line)
        assert MARKUP_GOAL in row  # literal, and on the run's one line


def test_a_hung_model_fails_within_model_timeout_and_says_so(workspace: Path):
    with FakeOllama([{"steps": []}], latency=3600) as ollama:  # accepts, never answers
        env = {"OPENLAM_OLLAMA_URL": ollama.url, "OPENLAM_MODEL_TIMEOUT": "2"}
        done = openlam(
            workspace,
            "run",
            "research our competitors",
            "--agent",
            "competitive_intelligence_analyst",
            env=env,
        )
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "asking the model…" in done.stdout  # said at once, before the wait
    assert f"ollama:fake-planner at {ollama.url} did not answer within 2 s" in done.stdout
    assert "OPENLAM_MODEL_TIMEOUT" in done.stdout
    assert ollama.chat_requests == 1  # no second attempt past the deadline


def test_a_broken_local_ollama_still_serves_the_quickstart_goal(workspace: Path):
    """Ollama answers /api/tags (so it is chosen) but every /api/chat is a 500."""
    broken = {"http_status": 500, "message": "llama runner process has terminated"}
    with FakeOllama(lambda _body: broken) as ollama:
        done = openlam(
            workspace,
            "run",
            "write 'Hello from OpenLAM' to hello.md",
            env={"OPENLAM_OLLAMA_URL": ollama.url, "OPENLAM_MODEL": ""},
        )
    assert done.returncode == 0, done.stdout + done.stderr
    assert (workspace / "hello.md").read_text() == "Hello from OpenLAM"
    assert "model ollama:fake-planner" in done.stdout  # the broken server was chosen…
    assert "the model failed: the model ollama:fake-planner at " in done.stdout  # …and it
    assert "answered HTTP 500: llama runner process has terminated" in done.stdout  # shows
    assert ollama.chat_requests == 3  # retried quickly, then the offline plan served


def _sigint_at_its_default() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_prints_one_line_and_no_traceback(workspace: Path):
    with FakeOpenAI([{"steps": []}], latency=3600) as server:  # the run waits for its model
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "openlam",
                "run",
                "research our competitors",
                "--model",
                "openai:fake",
                "--agent",
                "operator",
            ],
            cwd=workspace,
            text=True,
            env={
                **os.environ,
                "OPENLAM_WORKSPACE": str(workspace),
                "OPENLAM_OPENAI_BASE_URL": f"{server.url}/v1",
            },
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            # Ctrl-C as a terminal delivers it: a suite started in the background (`cmd &`)
            # runs with SIGINT ignored, which the child would inherit and rightly keep
            preexec_fn=_sigint_at_its_default,
        )
        deadline = time.monotonic() + 60
        while not server.chat_requests:  # interrupt while the model is being asked
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.1)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=180)  # slow when the machine is loaded
    assert process.returncode == 130, f"stdout:\n{out}\nstderr:\n{err}"
    lines = err.strip().splitlines()
    assert 1 <= len(lines) <= 2, err  # one line (two while session.py prints its own too)
    assert all(line.startswith("interrupted; ") for line in lines), err
    assert "Traceback" not in err and "WARNING" not in err
    run_id = out.split(", run ", 1)[1].split(")", 1)[0]
    assert any(run_id in line for line in lines)


def test_run_and_workforce_choose_alike_and_route_only_when_asked(workspace: Path):
    """Issue 10: `openlam run` asked the chief of staff's model first while Workforce.run
    did not. Both run the general operator now; --route is the one switch."""
    (workspace / "facts.txt").write_text("the sky is blue")

    def planner(body: dict) -> dict:
        prompt = body["messages"][-1]["content"]
        if "chief of staff" in prompt:  # the routing request
            return {"agent": "research_analyst", "reason": "research"}
        return {
            "steps": [{"id": "r", "action": "files.read", "args": {"path": "facts.txt"}}],
            "answer": "It says: ${r.output.text}",
        }

    with FakeOpenAI(planner) as server:
        env = {"OPENLAM_OPENAI_BASE_URL": f"{server.url}/v1"}
        plain = openlam(
            workspace, "run", "research what facts.txt says", "--model", "openai:fake", env=env
        )
        assert server.chat_requests == 1, plain.stdout  # no routing request
        # --no-learn: the first run's playbook would otherwise spare the plan request
        routed = openlam(
            workspace,
            "run",
            "research what facts.txt says",
            "--model",
            "openai:fake",
            "--route",
            "--json",
            "--no-learn",
            env=env,
        )
        assert server.chat_requests == 3  # the chief of staff's request, then the plan
    assert plain.returncode == 0, plain.stderr
    assert "Answer: It says: the sky is blue" in plain.stdout
    outcome = json.loads(routed.stdout)
    assert outcome["agent"] != "operator" and outcome["routing"]
    assert outcome["usage"]["model_requests"] == 2
