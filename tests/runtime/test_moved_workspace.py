"""A workspace may be moved (a renamed folder, a restored backup, another volume) while a
run in it waits: the run resumes there, writing into the workspace where it now is, with
the large step results it had recorded. And a run that cannot resume says so: it ends
failed, naming what is missing — it does not stay "running" for ever."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from openlam.config import load_settings
from openlam.governance.approvals import ApprovalStore
from openlam.memory.store import Store
from tests.conftest import wait_for
from tests.procs import allow_local_network, openlam

ASK = "rules:\n  - {id: ask, action: files.write, decision: require_approval}\n"


def stop(proc: subprocess.Popen[str]) -> str:
    proc.terminate()
    out, err = proc.communicate(timeout=60)
    return out + err


def waiting_run(workspace: Path, site_url: str) -> tuple[str, str]:
    """A run that fetched a 370 KB page (its result kept in .openlam/outputs/) and now
    waits for approval to write it: (run id, approval id), no process running."""
    allow_local_network(workspace)
    (workspace / "policies").mkdir()
    (workspace / "policies" / "org.yaml").write_text(ASK)
    submit = openlam(workspace, "submit", f"save the page at {site_url}/big as notes.md")
    out, err = submit.communicate(timeout=60)
    assert submit.returncode == 0, out + err
    worker = openlam(workspace, "worker")
    store = ApprovalStore(load_settings(workspace).app_database_url)
    try:
        assert wait_for(lambda: bool(store.list(status="pending")), timeout=90), stop(worker)
    finally:
        stop(worker)
    pending = store.list(status="pending")[0]
    assert list((workspace / ".openlam" / "outputs").rglob("*.json"))  # kept in a file
    return pending.run_id, pending.id


def resume(workspace: Path, approval: str, run_id: str) -> dict:
    approve = openlam(workspace, "approvals", "approve", approval)
    out, err = approve.communicate(timeout=60)
    assert approve.returncode == 0, out + err
    worker = openlam(workspace, "worker")
    runs = Store(load_settings(workspace).app_database_url)
    try:
        ended = wait_for(
            lambda: (runs.get_run(run_id) or {}).get("status") not in ("running", "queued"),
            timeout=90,
        )
    finally:
        log = stop(worker)
    assert ended, log
    assert "Traceback" not in log
    return runs.get_run(run_id) or {}


@pytest.mark.timeout(300)
def test_a_run_resumes_in_the_workspace_where_it_now_is(tmp_path: Path, site) -> None:
    before, after = tmp_path / "project", tmp_path / "project-renamed"
    before.mkdir()
    run_id, approval = waiting_run(before, site.url)
    before.rename(after)
    run = resume(after, approval, run_id)
    assert run["status"] == "completed", run["summary"]
    assert "Paragraph 9999 of a long page." in (after / "notes.md").read_text()
    assert not before.exists()  # not written where the folder used to be


@pytest.mark.timeout(300)
def test_a_run_that_cannot_resume_ends_failed_saying_why(workspace: Path, site) -> None:
    run_id, approval = waiting_run(workspace, site.url)
    for kept in (workspace / ".openlam" / "outputs").rglob("*.json"):
        kept.unlink()  # a backup restored without it, say
    run = resume(workspace, approval, run_id)
    assert run["status"] == "failed"
    assert run["summary"].startswith(
        "Failed: the run stopped on an error: a finished step's result is missing: "
    )
    assert "fix: restore the workspace's .openlam/outputs/" in run["summary"]
    shown = openlam(workspace, "runs", "show", run_id)
    out, _ = shown.communicate(timeout=60)
    assert "a finished step's result is missing" in out
    assert not (workspace / "notes.md").exists()
