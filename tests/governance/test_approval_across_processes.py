"""A run pauses for approval, its process dies, another process approves, the run
resumes and completes. Expiry denies; a non-approver is refused. All with real processes."""

from __future__ import annotations

import getpass
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from openlam.config import load_settings
from openlam.governance.approvals import ApprovalStore, Roles
from tests.conftest import allow_policy, wait_for
from tests.fakes.model_servers import FakeOpenAI

PLAN = {
    "steps": [
        {
            "id": "tell",
            "action": "social.slack_post",
            "args": {"text": "The quarterly report is ready"},
        }
    ]
}


def openlam(workspace: Path, env: dict, *args: str, wait: bool = True):
    cmd = [sys.executable, "-m", "openlam", *args]
    env = {**os.environ, "OPENLAM_WORKSPACE": str(workspace), **env}
    if not wait:
        return subprocess.Popen(
            cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)


def pending(workspace: Path) -> list:
    store = ApprovalStore(load_settings(workspace).app_database_url, roles=Roles({"*": ["dana"]}))
    return store.list(status="pending")


@pytest.mark.timeout(120)
def test_pause_die_approve_elsewhere_resume(workspace: Path, site):
    (workspace / "openlam.toml").write_text(
        f'[governance]\nadmins = ["{getpass.getuser()}"]\n'  # --as needs the admin role
        '[governance.approvers]\n"*" = ["dana"]\n'
    )
    with FakeOpenAI([PLAN]) as server:
        env = {
            "OPENLAM_OPENAI_BASE_URL": f"{server.url}/v1",
            "SLACK_WEBHOOK_URL": f"{site.url}/hits/slack",
        }
        run = openlam(
            workspace,
            env,
            "run",
            "Tell the team on Slack the report is ready",
            "--model",
            "openai:fake",
            "--agent",
            "chief_of_staff",
            "--json",
            wait=False,
        )
        try:
            assert wait_for(lambda: bool(pending(workspace)), timeout=40)
            os.kill(run.pid, signal.SIGKILL)  # the waiting process dies
            run.wait(10)
        finally:
            if run.poll() is None:
                run.kill()
        [approval] = pending(workspace)
        assert approval.action == "social.slack_post" and site.hits("/hits/slack") == 0

        refused = openlam(workspace, env, "approvals", "approve", approval.id, "--as", "mallory")
        assert refused.returncode == 2 and "mallory" in refused.stderr
        assert "Traceback" not in refused.stderr
        approved = openlam(
            workspace,
            env,
            "approvals",
            "approve",
            approval.id,
            "--as",
            "dana",
            "-m",
            "fine to announce",
        )
        assert approved.returncode == 0, approved.stderr

        stored = json.loads(
            openlam(workspace, env, "runs", "show", approval.run_id, "--json").stdout
        )
        resumed = openlam(workspace, env, "runs", "resume", stored["id"], "--json")
        outcome = json.loads(resumed.stdout)
        assert outcome["status"] == "completed", resumed.stderr
        assert site.hits("/hits/slack") == 1  # sent once, after the approval
        assert server.chat_requests == 1


@pytest.mark.timeout(120)
def test_an_expired_approval_is_a_denial(workspace: Path, site):
    allow_policy(
        workspace,
        "scope: org\nrules:\n  - id: slack-quick\n"
        "    action: social.slack_post\n    decision: require_approval\n"
        "    expires: 1s\n    reason: announcements need a yes within a second\n",
    )
    with FakeOpenAI([PLAN, {"steps": []}]) as server:
        env = {
            "OPENLAM_OPENAI_BASE_URL": f"{server.url}/v1",
            "SLACK_WEBHOOK_URL": f"{site.url}/hits/slack",
        }
        done = openlam(
            workspace,
            env,
            "run",
            "Tell the team on Slack the report is ready",
            "--model",
            "openai:fake",
            "--agent",
            "chief_of_staff",
            "--json",
        )
    outcome = json.loads(done.stdout)
    assert done.returncode == 4, done.stderr  # blocked
    assert outcome["status"] == "blocked"
    assert "expired" in outcome["steps"][0]["error"]
    assert site.hits("/hits/slack") == 0
