"""Kill the process between two actions; after restart the run completes and the first
action is not executed again (nor is the model asked again)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from openlam.governance.audit import AuditLog
from openlam.memory.store import Store
from tests.conftest import wait_for
from tests.fakes.model_servers import FakeOpenAI


def plan(site_url: str) -> dict:
    return {
        "steps": [
            {"id": "s1", "action": "http.get", "args": {"url": f"{site_url}/hits/first"}},
            {
                "id": "s2",
                "action": "http.get",
                "args": {"url": f"{site_url}/slow?s=60"},
                "depends_on": ["s1"],
            },
            {
                "id": "s3",
                "action": "files.write",
                "args": {"path": "result.txt", "content": "${s1.output.text} + ${s2.output.text}"},
            },
        ]
    }


def openlam(workspace: Path, env: dict, *args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "openlam", *args, "--workspace", str(workspace)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,
    )


def start_and_kill(workspace: Path, site, server) -> str:
    env = {**os.environ, "OPENLAM_OPENAI_BASE_URL": f"{server.url}/v1"}
    proc = openlam(
        workspace,
        env,
        "run",
        "fetch both and combine",
        "--model",
        "openai:fake-planner",
        "--agent",
        "operator",
        "--json",
    )
    try:
        assert wait_for(lambda: site.hits("/slow") >= 1, timeout=30), proc.stderr
        os.kill(proc.pid, signal.SIGKILL)  # between s1 (done) and s2 (in flight)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert site.hits("/hits/first") == 1
    store = Store(f"sqlite:///{workspace / '.openlam' / 'openlam.db'}")
    runs = store.list_runs()
    store.close()
    assert [r["status"] for r in runs] == ["running"]
    site.release.set()  # the slow page answers at once from now on
    return runs[0]["id"]


@pytest.mark.usefixtures("local_network")  # the test site is on loopback
@pytest.mark.timeout(120)
def test_killed_run_resumes_without_repeating_an_action(workspace: Path, site):
    with FakeOpenAI([plan(site.url)]) as server:
        run_id = start_and_kill(workspace, site, server)
        env = {**os.environ, "OPENLAM_OPENAI_BASE_URL": f"{server.url}/v1"}
        out, err = openlam(workspace, env, "runs", "resume", run_id, "--json").communicate(
            timeout=60
        )
        outcome = json.loads(out)
        assert outcome["status"] == "completed", err
        assert site.hits("/hits/first") == 1  # not executed again
        assert site.hits("/slow") == 2  # the interrupted step ran again, once
        assert server.chat_requests == 1  # the plan was checkpointed too
        assert (workspace / "result.txt").read_text() == "hit /hits/first + slow answer"
        # The audit log survived the kill: intact, every record once (replayed records
        # are keyed), the results of steps finished before the kill included.
        audit = AuditLog(f"sqlite:///{workspace / '.openlam' / 'openlam.db'}")
        assert audit.verify().ok
        kinds = [r["kind"] for r in audit.records(run_id=run_id)]
        assert {
            k: kinds.count(k)
            for k in ("run.started", "plan", "policy", "action", "result", "run.finished")
        } == {"run.started": 1, "plan": 1, "policy": 3, "action": 3, "result": 3, "run.finished": 1}


@pytest.mark.usefixtures("local_network")  # the test site is on loopback
@pytest.mark.timeout(120)
def test_killed_run_resumes_automatically_on_next_start(workspace: Path, site):
    with FakeOpenAI([plan(site.url)]) as server:
        run_id = start_and_kill(workspace, site, server)
        env = {**os.environ, "OPENLAM_OPENAI_BASE_URL": f"{server.url}/v1"}
        proc = openlam(workspace, env, "run", "write 'next' to next.md", "--model", "offline")
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, out + err
        assert f"Resuming 1 interrupted run(s): {run_id}" in out
        assert f"Resumed run {run_id}: completed" in out
        assert site.hits("/hits/first") == 1
        assert (workspace / "result.txt").exists() and (workspace / "next.md").exists()
