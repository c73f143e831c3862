"""A run killed while steps wait for approval never breaks another process's run, and
resumes deterministically: each step gets its own recorded result back, whatever order
its approvals were given in."""

from __future__ import annotations

import getpass
import json
import signal
from pathlib import Path

import pytest

from openlam.config import load_settings
from openlam.governance.approvals import ApprovalStore, Roles
from openlam.memory.store import Store
from tests.conftest import allow_policy, wait_for
from tests.fakes.model_servers import FakeOpenAI
from tests.procs import allow_local_network, model_env, openlam

ME = getpass.getuser()
POLICY = """
rules:
  - {id: ask-before-writing, action: files.write, decision: require_approval}
"""


def two_writes_then_slow(site_url: str) -> dict:
    return {
        "steps": [
            {"id": "a", "action": "files.write", "args": {"path": "a.txt", "content": "A"}},
            {"id": "b", "action": "files.write", "args": {"path": "b.txt", "content": "B"}},
            {
                "id": "slow",
                "action": "http.get",
                "args": {"url": f"{site_url}/slow?s=60"},
                "depends_on": ["a", "b"],
            },
        ]
    }


def approvals(workspace: Path) -> ApprovalStore:
    return ApprovalStore(load_settings(workspace).app_database_url, roles=Roles({"*": [ME]}))


def setup(workspace: Path) -> None:
    allow_local_network(workspace, f'[governance.approvers]\n"*" = ["{ME}"]\n')
    allow_policy(workspace, POLICY)


def kill_while_waiting(workspace: Path, server_url: str, waiting: int, sig: int) -> str:
    proc = openlam(
        workspace,
        "run",
        "write both files",
        "--model",
        "openai:fake",
        "--agent",
        "operator",
        env=model_env(server_url),
    )
    try:
        assert wait_for(
            lambda: len(approvals(workspace).list(status="pending")) == waiting, timeout=60
        ), proc.stderr
        proc.send_signal(sig)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    return approvals(workspace).list(status="pending")[0].run_id


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
@pytest.mark.timeout(180)
def test_an_unrelated_run_is_not_poisoned_by_a_killed_waiting_run(
    workspace: Path, site, sig: int
) -> None:
    setup(workspace)
    with FakeOpenAI([two_writes_then_slow(site.url)]) as server:
        run_id = kill_while_waiting(workspace, server.url, 2, sig)
        nxt = openlam(
            workspace,
            "run",
            f"fetch {site.url}/hits/next",
            "--model",
            "offline",
            env=model_env(server.url),
        )
        out, err = nxt.communicate(timeout=90)
        assert nxt.returncode == 0, out + err
        assert "Traceback" not in err and "DBOS" not in err
        assert site.hits("/hits/next") == 1
        # the killed run is still waiting for its two approvals, not broken
        assert len(approvals(workspace).list(status="pending", run_id=run_id)) == 2


@pytest.mark.timeout(240)
def test_approvals_given_in_reverse_order_replay_to_the_right_steps(workspace: Path, site) -> None:
    setup(workspace)
    with FakeOpenAI([two_writes_then_slow(site.url)]) as server:
        env = model_env(server.url)
        proc = openlam(
            workspace,
            "run",
            "write both files",
            "--model",
            "openai:fake",
            "--agent",
            "operator",
            "--json",
            env=env,
        )
        try:
            assert wait_for(
                lambda: len(approvals(workspace).list(status="pending")) == 2, timeout=60
            )
            waiting = {a.step_id: a for a in approvals(workspace).list(status="pending")}
            for step in ("b", "a"):  # b is decided (and runs) first
                decided = openlam(workspace, "approvals", "approve", waiting[step].id)
                out, err = decided.communicate(timeout=60)
                assert decided.returncode == 0, out + err
                assert wait_for(lambda s=step: (workspace / f"{s}.txt").exists(), timeout=30)
            assert wait_for(lambda: site.hits("/slow") == 1, timeout=30)
            proc.kill()  # both writes done, the fetch in flight
            proc.wait(10)
        finally:
            if proc.poll() is None:
                proc.kill()
        site.release.set()
        resumed = openlam(workspace, "runs", "resume", waiting["a"].run_id, "--json", env=env)
        out, err = resumed.communicate(timeout=90)
        assert resumed.returncode == 0, out + err
        outcome = json.loads(out)
        assert server.chat_requests == 1
    steps = {s["id"]: s for s in outcome["steps"]}
    assert outcome["status"] == "completed", outcome["summary"]
    assert steps["a"]["output"]["path"] == "a.txt"
    assert steps["b"]["output"]["path"] == "b.txt"
    assert site.hits("/slow") == 2  # only the step in flight ran again


@pytest.mark.timeout(120)
async def test_closing_a_workforce_stops_its_runs_and_leaves_them_resumable(
    workspace: Path, caplog
) -> None:
    """A run still waiting for a person when its Workforce closes is stopped with it: no
    task of it is left on the caller's loop (it would keep polling a stopped DBOS and
    fail), nothing is logged as an error, and the run waits on for its approvals."""
    import asyncio

    from openlam import Workforce
    from openlam.testing import ScriptedModel

    allow_local_network(workspace, f'[governance.approvers]\n"*" = ["{ME}"]\n')
    allow_policy(workspace, POLICY)
    plan = {
        "steps": [{"id": "a", "action": "files.write", "args": {"path": "a.txt", "content": "A"}}]
    }
    model = ScriptedModel([plan])
    async with Workforce(workspace, model=model.model) as wf:
        run = asyncio.create_task(wf.run("write a file", agent="operator"))
        assert await asyncio.to_thread(
            wait_for, lambda: len(approvals(workspace).list(status="pending")) == 1, 30
        )
    others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task() and t is not run]
    await asyncio.sleep(1.5)  # longer than a waiting run's poll: a live one would poll now
    assert all(t.done() for t in others), others
    assert run.done()
    noise = [r for r in caplog.records if r.name.startswith("dbos") and r.levelno >= 30]
    assert not noise, [r.getMessage() for r in noise]
    pending = approvals(workspace).list(status="pending")
    assert len(pending) == 1 and not (workspace / "a.txt").exists()
    stored = Store(load_settings(workspace).app_database_url).get_run(pending[0].run_id)
    assert stored is not None and stored["status"] not in ("failed", "completed"), stored
    # the next workforce on the workspace takes it over; approved, it finishes
    async with Workforce(workspace, model=model.model) as again:
        assert again.interrupted_runs() == [pending[0].run_id]
        approvals(workspace).approve(pending[0].id, ME)
        outcome = await asyncio.wait_for(again.wait(pending[0].run_id), 60)
    assert outcome.status.value == "completed", outcome.summary
    assert (workspace / "a.txt").read_text() == "A"
    assert len(model.requests) == 1  # the plan was not asked for again
