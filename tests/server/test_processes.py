"""The server as operators run it: `openlam serve` under uvicorn on a real port, and a
server without its own worker whose runs a separate `openlam worker` executes — their
events still stream live from the server."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.procs import openlam, status_of_announced_body, wait_until_up
from tests.server.conftest import Server, sse_events

GOAL = {"goal": "write 'from another process' to other.md", "model": "offline"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(proc: subprocess.Popen[str]) -> str:
    proc.terminate()
    try:
        out, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    return out + err


@pytest.mark.timeout(180)
async def test_a_run_executed_by_a_separate_worker_streams_from_the_server(
    no_worker_server: Server,
) -> None:
    server = no_worker_server
    op = server.token("operator")
    health = (await server.client.get("/api/v1/health")).json()
    assert health["worker"] is False
    run_id = (await server.client.post("/api/v1/goals", json=GOAL, headers=op)).json()["run_id"]
    await asyncio.sleep(0.5)
    assert (await server.client.get(f"/api/v1/runs/{run_id}", headers=op)).json()[
        "status"
    ] == "queued"  # nobody runs it in the server
    stream = asyncio.create_task(sse_events(server.client, f"/api/v1/runs/{run_id}/events", op))
    worker = openlam(server.workspace, "worker")
    try:
        events = await asyncio.wait_for(stream, 120)
    finally:
        log = stop(worker)
    kinds = [name for name, _ in events]
    assert kinds[0] == "run.started" and kinds[-1] == "run.finished", (kinds, log)
    assert "step.finished" in kinds
    assert events[-1][1]["status"] == "completed"
    assert (server.workspace / "other.md").read_text() == "from another process"


@pytest.mark.timeout(180)
def test_openlam_serve_on_a_real_port_streams_events_as_they_happen(workspace: Path) -> None:
    (workspace / "policies").mkdir()
    (workspace / "policies" / "org.yaml").write_text(
        "rules:\n  - {id: ask, action: files.write, decision: require_approval}\n"
    )
    port = free_port()
    proc = openlam(workspace, "serve", "--port", str(port))
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{base}/api/v1/health", proc)
        op, approver = (token(workspace, "ci", "operator"), token(workspace, "amy", "approver"))
        with httpx.Client(base_url=base, timeout=60) as client:
            assert client.get("/api/docs").status_code == 200
            spec = client.get("/api/v1/openapi.json").json()
            assert "/api/v1/runs/{run_id}/events" in spec["paths"]
            queued = client.post("/api/v1/goals", json=GOAL, headers=op)
            assert queued.status_code == 202, queued.text
            run_id = queued.json()["run_id"]
            kinds = []
            with client.stream("GET", f"/api/v1/runs/{run_id}/events", headers=op) as reply:
                for line in reply.iter_lines():
                    if not line.startswith("data:"):
                        continue
                    event = json.loads(line[5:])
                    kinds.append(event["kind"])
                    if event["kind"] == "approval.requested":
                        # seen live: the run is waiting for exactly this decision
                        assert (
                            client.get(f"/api/v1/runs/{run_id}", headers=op).json()["status"]
                            == "running"
                        )
                        decided = client.post(
                            f"/api/v1/approvals/{event['approval']}/approve", headers=approver
                        )
                        assert decided.status_code == 200, decided.text
            assert kinds[0] == "run.started" and kinds[-1] == "run.finished"
            assert kinds.index("approval.requested") < kinds.index("approval.decided")
            assert client.get(f"/api/v1/runs/{run_id}", headers=op).json()["status"] == "completed"
    finally:
        log = stop(proc)
    # uvicorn shuts down gracefully on SIGTERM, then re-raises it as its exit status
    assert proc.returncode in (0, -15), log
    assert "Application shutdown complete" in log and "Traceback" not in log


def token(workspace: Path, name: str, role: str) -> dict[str, str]:
    made = subprocess.run(
        ["openlam", "tokens", "create", name, "--role", role, "--workspace", str(workspace)],
        capture_output=True,
        text=True,
    )
    return {"Authorization": f"Bearer {made.stdout.strip()}"}


@pytest.mark.timeout(180)
async def test_the_server_on_postgresql(workspace: Path, pg_url: str) -> None:
    """The event log, tokens and sessions on PostgreSQL, as a team deploys it."""
    from openlam.config import load_settings
    from openlam.server import create_app
    from tests.server.conftest import BASE

    settings = load_settings(workspace).with_overrides(database_url=pg_url)
    app = create_app(settings=settings)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url=BASE, timeout=60) as client,
    ):
        _info, made = app.state.credentials.create_token("pg", "operator")
        op = {"Authorization": f"Bearer {made}"}
        run_id = (await client.post("/api/v1/goals", json=GOAL, headers=op)).json()["run_id"]
        events = await asyncio.wait_for(
            sse_events(client, f"/api/v1/runs/{run_id}/events", op), 120
        )
        kinds = [name for name, _ in events]
        assert kinds[0] == "run.started" and kinds[-1] == "run.finished"
        assert events[-1][1]["status"] == "completed"
        login = await client.post("/api/v1/session", json={"token": made})
        assert login.status_code == 201
        assert (await client.get("/api/v1/runs")).json()["runs"][0]["id"] == run_id


@pytest.mark.timeout(180)
def test_serve_on_a_port_in_use_says_so_before_it_starts_anything(workspace: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = openlam(workspace, "serve", "--port", str(port))
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2, out + err
    assert f"cannot listen on 127.0.0.1 port {port}: Address already in use" in err
    assert "fix: choose another port with --port (0: any free one)" in err
    assert "Application startup" not in out + err  # its worker never started taking goals
    assert "Traceback" not in err


@pytest.mark.timeout(180)
def test_serve_on_port_0_shows_the_port_it_got(workspace: Path) -> None:
    proc = openlam(workspace, "serve", "--port", "0")
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith(f"OpenLAM serving {workspace} at http://127.0.0.1:"), line
        base = line.split(" at ", 1)[1].split("/ ", 1)[0]
        deadline = time.monotonic() + 60
        while True:
            try:
                health = httpx.get(f"{base}/api/v1/health", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline, stop(proc)
                time.sleep(0.2)
        assert health.status_code == 200 and health.json()["worker"] is True
    finally:
        stop(proc)


@pytest.mark.timeout(180)
def test_a_body_too_large_is_refused_before_it_is_read(workspace: Path) -> None:
    """FastAPI parses a body before it checks who sent it: unbounded, anyone who reaches
    the port could make the server hold any amount of memory."""
    port = free_port()
    proc = openlam(workspace, "serve", "--port", str(port))
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{base}/api/v1/health", proc)
        # announced: answered at once, before a byte of the 5 GB is sent
        assert status_of_announced_body(port, "/api/v1/goals", 5_000_000_000) == 413
        assert status_of_announced_body(port, "/hooks/orders", 5_000_000_000) == 413
        # not announced (chunked): refused once it passes the limit
        chunks = iter([b'{"goal": "', *[b"x" * 1_000_000] * 12, b'"}'])
        refused = httpx.post(f"{base}/api/v1/goals", content=chunks, timeout=60)
        assert refused.status_code == 413, refused.text
        assert refused.json()["detail"].startswith("the request body is over 10485760 bytes")
        queued = httpx.post(f"{base}/api/v1/goals", json=GOAL, timeout=60)
        assert queued.status_code == 202, queued.text  # the loopback user, as ever
    finally:
        log = stop(proc)
    assert "Traceback" not in log
