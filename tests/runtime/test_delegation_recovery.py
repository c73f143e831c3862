"""Child runs are durable like any run: kill the process while a child is mid-way; after
restart the tree completes, no action runs twice and no model is asked again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import wait_for
from tests.fakes.model_servers import FakeOpenAI


def org_script(site_url: str):
    def reply(body: dict) -> dict:
        system = body["messages"][0]["content"]
        me = system[: system.find(")") + 1]
        if "Head of Research" in me:
            return {
                "steps": [
                    {
                        "id": "d1",
                        "action": "delegate",
                        "args": {
                            "agent": "competitive_intelligence_analyst",
                            "goal": "Profile the competitor Initech",
                        },
                    },
                    {
                        "id": "w",
                        "action": "files.write",
                        "args": {"path": "brief.md", "content": "${d1.output.summary}"},
                    },
                ]
            }
        return {
            "steps": [
                {"id": "s1", "action": "web.fetch", "args": {"url": f"{site_url}/hits/first"}},
                {
                    "id": "s2",
                    "action": "web.fetch",
                    "args": {"url": f"{site_url}/slow?s=60"},
                    "depends_on": ["s1"],
                },
                {
                    "id": "s3",
                    "action": "files.write",
                    "args": {"path": "initech.md", "content": "${s2.output.content}"},
                },
            ]
        }

    return reply


def openlam(workspace: Path, env: dict, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "openlam", *args, "--workspace", str(workspace)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.timeout(120)
def test_killed_delegation_tree_resumes(workspace: Path, site):
    (workspace / "openlam.toml").write_text("[web]\nallow_private = true\n")
    with FakeOpenAI(org_script(site.url)) as server:
        env = {**os.environ, "OPENLAM_OPENAI_BASE_URL": f"{server.url}/v1"}
        proc = openlam(
            workspace,
            env,
            "run",
            "research Initech",
            "--model",
            "openai:fake",
            "--agent",
            "head_of_research",
            "--json",
        )
        try:
            assert wait_for(lambda: site.hits("/slow") >= 1, timeout=40), proc.stderr
            os.kill(proc.pid, signal.SIGKILL)  # the child is waiting on its second fetch
            proc.wait(10)
        finally:
            if proc.poll() is None:
                proc.kill()
        site.release.set()
        assert server.chat_requests == 2  # the parent's plan and the child's
        from openlam.memory.store import Store

        store = Store(f"sqlite:///{workspace / '.openlam' / 'openlam.db'}")
        parent = next(r for r in store.list_runs() if r["parent_id"] is None)
        store.close()
        resumed = openlam(workspace, env, "runs", "resume", parent["id"], "--json")
        out, err = resumed.communicate(timeout=60)
        outcome = json.loads(out)
        assert outcome["status"] == "completed", err
        assert outcome["children"] == [f"{parent['id']}.d1"]
        assert site.hits("/hits/first") == 1  # the child's first action was not repeated
        assert site.hits("/slow") == 2
        assert server.chat_requests == 2  # nobody was asked to plan again
        assert (
            "Slow answer" in (workspace / "initech.md").read_text()
            or "slow answer" in (workspace / "initech.md").read_text()
        )
        assert (workspace / "brief.md").read_text().startswith("Completed")
