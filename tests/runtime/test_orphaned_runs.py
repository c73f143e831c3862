"""A run whose process was killed is handed back to DBOS's queue by the next process
that starts; if that process is killed too before any process took the run, the run
waits there. With no worker running nothing else would ever take it: the next
`openlam run` resumes it (before, it stayed "running" for ever)."""

from __future__ import annotations

import signal
import sqlite3
from pathlib import Path

import pytest

from openlam.config import load_settings
from openlam.memory.store import Store
from tests.conftest import wait_for
from tests.fakes.model_servers import FakeOpenAI
from tests.procs import model_env, openlam

PLAN = {"steps": [{"id": "s1", "action": "files.write", "args": {"path": "a.md", "content": "A"}}]}


def dbos_status(workspace: Path, run_id: str) -> str:
    with sqlite3.connect(workspace / ".openlam" / "dbos.sqlite") as db:
        row = db.execute(
            "SELECT status FROM workflow_status WHERE workflow_uuid = ?", (run_id,)
        ).fetchone()
    return row[0]


@pytest.mark.timeout(180)
def test_a_run_handed_back_by_a_process_killed_in_turn_is_resumed(workspace: Path) -> None:
    with FakeOpenAI([PLAN], latency=3600) as hung, FakeOpenAI(lambda _body: PLAN) as answering:
        first = openlam(
            workspace, "run", "write A to a.md", "--model", "openai:fake", env=model_env(hung.url)
        )
        assert wait_for(lambda: hung.chat_requests == 1, timeout=60), first.stderr
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        [run] = Store(load_settings(workspace).app_database_url).list_runs()

        # The next process hands the run back at its start; killed as soon as it says so,
        # before its queue's next poll (DBOS polls each second) could take the run.
        env = {**model_env(answering.url), "PYTHONUNBUFFERED": "1"}
        second = openlam(workspace, "run", "write 'b' to b.md", env=env)
        assert second.stdout is not None
        for line in second.stdout:
            if "Resuming 1 interrupted run(s)" in line:
                break
        second.send_signal(signal.SIGKILL)
        second.wait(10)
        assert dbos_status(workspace, run["id"]) == "ENQUEUED"  # handed back, taken by nobody

        third = openlam(workspace, "run", "write 'c' to c.md", env=model_env(answering.url))
        out, err = third.communicate(timeout=120)
    assert third.returncode == 0, out + err
    assert f"Resuming 1 interrupted run(s): {run['id']}" in out
    assert f"Resumed run {run['id']}: completed" in out
    assert (workspace / "a.md").read_text() == "A"
    assert dbos_status(workspace, run["id"]) == "SUCCESS"
