"""Several `openlam run` processes on one workspace never run each other's live steps.

Each process is its own executor; a run is recovered only when its executor is provably
dead. The peer (a local site) counts how often each step's request arrived.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import wait_for
from tests.fakes.model_servers import FakeOpenAI
from tests.procs import allow_local_network, model_env, openlam

JOB = re.compile(r"job (\d+)")


def job_plans(site_url: str, seconds: float):
    """Each goal "job N" gets its own plan: a slow fetch (in flight while other processes
    start), then a file write that uses it."""

    def reply(body: dict) -> dict:
        found = JOB.search(body["messages"][-1]["content"])
        n = found.group(1) if found else "x"
        return {
            "steps": [
                {
                    "id": "fetch",
                    "action": "http.get",
                    "args": {"url": f"{site_url}/slow?job={n}&s={seconds}"},
                },
                {
                    "id": "save",
                    "action": "files.write",
                    "args": {"path": f"out/job{n}.txt", "content": "${fetch.output.text}"},
                },
            ]
        }

    return reply


def run_jobs(workspace: Path, site, count: int, env: dict[str, str], seconds: float) -> None:
    allow_local_network(workspace)
    with FakeOpenAI(job_plans(site.url, seconds)) as server:
        env = {**model_env(server.url), **env}
        procs = [
            openlam(
                workspace,
                "run",
                f"job {i:02d}",
                "--model",
                "openai:fake",
                "--agent",
                "operator",
                env=env,
            )
            for i in range(count)
        ]
        results = [p.communicate(timeout=280) for p in procs]
    for i, (proc, (out, err)) in enumerate(zip(procs, results, strict=True)):
        assert proc.returncode == 0, f"job {i:02d} exited {proc.returncode}:\n{out}\n{err}"
        assert "Resuming" not in out, f"job {i:02d} took over a live run:\n{out}"
        assert (workspace / "out" / f"job{i:02d}.txt").read_text() == "slow answer"
    for i in range(count):
        assert site.hits(f"/slow?job={i:02d}&") == 1, f"job {i:02d}"


@pytest.mark.timeout(300)
def test_twenty_processes_on_sqlite_each_step_once(workspace: Path, site) -> None:
    run_jobs(workspace, site, 20, {}, 1.5)


@pytest.mark.timeout(300)
def test_twenty_processes_on_postgresql_each_step_once(workspace: Path, site, pg_url) -> None:
    run_jobs(workspace, site, 20, {"OPENLAM_DATABASE_URL": pg_url}, 1.5)


@pytest.mark.timeout(120)
def test_a_second_process_does_not_resume_a_live_run(workspace: Path, site) -> None:
    """`openlam run A & sleep 3; openlam run B`: B leaves A alone, and A's in-flight
    request reaches the server once."""
    allow_local_network(workspace)
    with FakeOpenAI(job_plans(site.url, 6)) as server:
        env = model_env(server.url)
        first = openlam(
            workspace, "run", "job 01", "--model", "openai:fake", "--agent", "operator", env=env
        )
        assert wait_for(lambda: site.hits("/slow?job=01&") == 1, timeout=60)
        second = openlam(workspace, "run", "write 'b' to b.txt", "--model", "offline", env=env)
        out, err = second.communicate(timeout=60)
        assert second.returncode == 0, out + err
        assert "Resuming" not in out
        out, err = first.communicate(timeout=60)
        assert first.returncode == 0, out + err
    assert site.hits("/slow?job=01&") == 1
    resume = openlam(workspace, "runs", "list")
    listed, _ = resume.communicate(timeout=60)
    assert listed.count("completed") == 2
