"""A queue's concurrency limit holds when several worker processes share one SQLite
system database (DBOS counts and claims in two steps there; see
openlam.runtime.sqlite_dequeue)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from dbos import DBOS, DBOSClient

from tests.conftest import wait_for

JOBS = 150
LIMIT = 2


@pytest.mark.timeout(120)
def test_three_workers_on_one_sqlite_file_never_run_more_than_the_limit(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/system.sqlite"
    DBOS.migrate(url)
    client = DBOSClient(system_database_url=url, application_name="openlam")
    client.register_queue("q", global_concurrency=LIMIT, polling_interval_sec=0.01)
    for i in range(JOBS):
        client.enqueue({"queue_name": "q", "workflow_name": "job", "app_version": "1"}, i)
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.fakes.dequeue_worker", url, "q", "90"],
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    try:
        assert wait_for(
            lambda: len(client.list_workflows(status="SUCCESS", load_input=False)) == JOBS,
            timeout=90,
            interval=0.2,
        )
    finally:
        for w in workers:
            w.kill()
        errors = "".join(w.communicate(timeout=30)[1] for w in workers)
        client.destroy()
    running_at_start = [
        w.output for w in DBOSClient(system_database_url=url).list_workflows(load_input=False)
    ]
    assert max(running_at_start) == LIMIT, errors  # used to the full, and never beyond
    assert "exceeds the global concurrency limit" not in errors
