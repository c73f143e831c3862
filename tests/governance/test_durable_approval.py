"""A durable run waits for an approval; another process approves; the run goes on."""

from __future__ import annotations

import asyncio
import getpass
import os
import subprocess
import sys
from pathlib import Path

from openlam import Workforce
from openlam.config import load_settings
from openlam.testing import scripted_model

POLICY = """
rules:
  - {id: ask-before-writing, action: files.write, decision: require_approval}
"""


async def test_durable_run_resumes_after_approval_from_another_process(workspace: Path) -> None:
    (workspace / "openlam.toml").write_text(  # --as needs the admin role
        f'[governance]\nadmins = ["{getpass.getuser()}"]\n'
        '[governance.approvers]\n"*" = ["alice"]\n',
        encoding="utf-8",
    )
    (workspace / "policies").mkdir()
    (workspace / "policies" / "org.yaml").write_text(POLICY, encoding="utf-8")
    settings = load_settings(workspace).with_overrides(step_timeout=5.0)
    plan = {
        "steps": [
            {
                "id": "w",
                "action": "files.write",
                "args": {"path": "memo.md", "content": "approved memo"},
            }
        ]
    }
    scripted_model("test:gov-durable", [plan])
    async with Workforce(settings=settings, model="test:gov-durable") as wf:
        gov = wf.runtime.gate
        task = asyncio.create_task(wf.run("write the memo"))
        while not (pending := gov.approvals.list(status="pending")):
            assert not task.done(), task.result()
            await asyncio.sleep(0.05)
        assert not (workspace / "memo.md").exists()

        def cli(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [sys.executable, "-m", "openlam", "approvals", *args],
                capture_output=True,
                text=True,
                timeout=60,
                env={**os.environ, "OPENLAM_WORKSPACE": str(workspace)},
            )

        refused = await asyncio.to_thread(cli, "approve", pending[0].id, "--as", "mallory")
        assert refused.returncode == 2 and "approver role" in refused.stderr
        done = await asyncio.to_thread(cli, "approve", pending[0].id, "--as", "alice")
        assert done.returncode == 0, done.stderr
        outcome = await asyncio.wait_for(task, 60)
    assert outcome.status.value == "completed", outcome.summary
    assert (workspace / "memo.md").read_text() == "approved memo"
    assert gov.audit.verify().ok
    decided = gov.audit.records(kind="approval.decided")
    assert [(r["actor"], r["body"]["status"]) for r in decided] == [("alice", "approved")]
