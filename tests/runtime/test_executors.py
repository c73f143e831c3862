"""Executor leases: who is provably dead, and a process that comes back after being
declared dead does not run a step a second time."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from openlam.config import load_settings
from openlam.memory.store import Store
from openlam.memory.tables import executors as table
from openlam.runtime.executors import (
    DEAD,
    FENCED_EXIT_CODE,
    STOPPED,
    Executors,
    Lease,
    new_executor_id,
)
from tests.conftest import wait_for
from tests.fakes.model_servers import FakeOpenAI
from tests.procs import allow_local_network, model_env, openlam


def executors_of(workspace: Path, lease: Lease | None = None) -> Executors:
    return Executors(Store(load_settings(workspace).app_database_url).engine, lease)


def test_liveness_by_pid_state_and_lease(workspace: Path) -> None:
    ex = executors_of(workspace, Lease(heartbeat_seconds=0.1, lease_seconds=0.3))
    me = new_executor_id("test")
    ex.register(me, "test")
    assert not ex.is_dead(ex.get(me))  # this very process
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    gone = new_executor_id("test")
    ex.register(gone, "test")
    with ex.engine.begin() as conn:  # a row for a process that has exited
        conn.execute(sa.update(table).where(table.c.id == gone).values(pid=child.pid))
    assert ex.is_dead(ex.get(gone))
    killed = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    killed.send_signal(signal.SIGKILL)  # and not reaped: a zombie, as under a busy parent
    wait_for(
        lambda: open(f"/proc/{killed.pid}/stat").read().rsplit(")", 1)[1].split()[0] == "Z",  # noqa: SIM115
        timeout=10,
    )
    zombie = new_executor_id("test")
    ex.register(zombie, "test")
    with ex.engine.begin() as conn:
        conn.execute(
            sa.update(table).where(table.c.id == zombie).values(pid=killed.pid, pid_start="")
        )
    assert ex.is_dead(ex.get(zombie))
    killed.wait()
    reused = new_executor_id("test")
    ex.register(reused, "test")
    with ex.engine.begin() as conn:  # same pid as a live process, but another start time
        conn.execute(
            sa.update(table).where(table.c.id == reused).values(pid=os.getpid(), pid_start="1")
        )
    assert ex.is_dead(ex.get(reused))
    remote = new_executor_id("test")
    ex.register(remote, "test")
    with ex.engine.begin() as conn:  # on another machine only the lease tells
        conn.execute(sa.update(table).where(table.c.id == remote).values(host="elsewhere"))
    assert not ex.is_dead(ex.get(remote))
    time.sleep(0.5)
    info = ex.get(remote)
    assert ex.is_dead(info)
    assert ex.declare_dead(info, me) and not ex.declare_dead(info, me)  # only one wins
    assert ex.get(remote).state == DEAD
    assert not ex.heartbeat(remote)  # its lease cannot be renewed any more
    ex.stop(me)
    assert ex.get(me).state == STOPPED and ex.is_dead(ex.get(me))


@pytest.mark.timeout(180)
def test_a_process_declared_dead_does_not_go_on(workspace: Path, site) -> None:
    """A stopped process (as if its machine were cut off) loses its lease; another takes
    its run over and finishes it; when the first one wakes up it exits without recording
    anything, so the run's later step runs once."""
    allow_local_network(workspace, "[runtime]\nheartbeat_seconds = 0.5\nlease_seconds = 2\n")
    plan = {
        "steps": [
            {"id": "wait", "action": "http.get", "args": {"url": f"{site.url}/slow?s=4"}},
            {
                "id": "after",
                "action": "http.get",
                "args": {"url": f"{site.url}/hits/after"},
                "depends_on": ["wait"],
            },
        ]
    }
    with FakeOpenAI([plan]) as server:
        env = model_env(server.url)
        first = openlam(
            workspace,
            "run",
            "wait then go",
            "--model",
            "openai:fake",
            "--agent",
            "operator",
            env=env,
        )
        assert wait_for(lambda: site.hits("/slow") == 1, timeout=60)
        os.kill(first.pid, signal.SIGSTOP)
        ex = executors_of(workspace)
        with ex.engine.begin() as conn:  # make it look like a process on another machine
            conn.execute(sa.update(table).where(table.c.pid == first.pid).values(host="elsewhere"))
        time.sleep(3)  # its lease runs out
        second = openlam(
            workspace, "run", f"fetch {site.url}/hits/other", "--model", "offline", env=env
        )
        out, err = second.communicate(timeout=90)
        assert second.returncode == 0, out + err
        assert "Resuming 1 interrupted run(s)" in out
        assert wait_for(lambda: site.hits("/hits/after") == 1, timeout=30)
        os.kill(first.pid, signal.SIGCONT)
        first.communicate(timeout=60)
        assert first.returncode == FENCED_EXIT_CODE
    assert site.hits("/hits/after") == 1
    assert site.hits("/slow") == 2  # the step in flight when it stopped ran again, once
    runs = Store(load_settings(workspace).app_database_url).list_runs()
    assert sorted(r["status"] for r in runs) == ["completed", "completed"]


def test_a_checkpoint_after_this_process_stopped_itself_is_refused_not_fenced(
    workspace: Path,
) -> None:
    """A run its queue handed over while the process shut down writes a checkpoint after
    the executor was marked stopped: the checkpoint is refused with an error in that run
    (the next process recovers it), and the process goes on — exiting as if fenced would
    kill whatever embeds OpenLAM (a server, a test session). Declared dead by another
    process, it still exits (the test above)."""
    script = f"""
import sys
from openlam.config import load_settings
from openlam.memory.store import Store
from openlam.runtime.executors import Executors, ExecutorStopped, new_executor_id
from openlam.runtime.journal import JournalStore

settings = load_settings({str(workspace)!r})
engine = Store(settings.app_database_url).engine
ex = Executors(engine)
me = new_executor_id("test")
ex.register(me, "test")
journal = JournalStore(engine, me, settings.state_dir / "outputs", ex).journal("run-late")
journal.begin("model:1")  # while it runs: recorded
ex.stop(me)
try:
    journal.finish("model:1", {{"text": "late"}})
except ExecutorStopped as exc:
    print("refused:", exc)
print("still here")
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    assert "refused: run not checkpointed" in done.stdout and "still here" in done.stdout
    ex = executors_of(workspace)
    with ex.engine.connect() as conn:  # the late result was not recorded
        states = conn.execute(sa.text("SELECT state FROM checkpoints")).scalars().all()
    assert states == ["started"]
