"""Idle event streams stay open through proxies: `openlam serve` on a real port sends a
keep-alive comment on a quiet run's stream — the API's ``/api/v1/runs/{id}/events`` and
the dashboard's ``/runs/{id}/live`` — every ``OPENLAM_SSE_PING`` seconds (small here).
The server has no worker, so the queued run stays quiet for as long as the test reads."""

from __future__ import annotations

import secrets
import threading
import time
from pathlib import Path

import httpx
import pytest

from openlam.errors import UserError
from openlam.server.events import PING_SECONDS, ping_seconds
from tests.procs import openlam, wait_until_up
from tests.server.test_processes import free_port, stop

PING = 0.4


def first_lines(client: httpx.Client, path: str, headers: dict[str, str], wait: float) -> list:
    """(seconds since the request, line) of a stream's lines within ``wait`` seconds."""
    seen: list[tuple[float, str]] = []
    started = time.monotonic()

    def read() -> None:
        with client.stream("GET", path, headers=headers) as reply:
            assert reply.status_code == 200, reply.read()
            assert reply.headers["content-type"].startswith("text/event-stream")
            for line in reply.iter_lines():
                seen.append((time.monotonic() - started, line))
                if time.monotonic() - started > wait:
                    return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(wait + 5)  # the thread ends with the stream's next line after `wait`
    return list(seen)


@pytest.mark.timeout(120)
def test_an_idle_stream_gets_a_keepalive_comment_within_the_interval(workspace: Path) -> None:
    token = "olam_" + secrets.token_urlsafe(32)
    port = free_port()
    proc = openlam(
        workspace,
        "serve",
        "--no-worker",
        "--port",
        str(port),
        env={"OPENLAM_SSE_PING": str(PING), "OPENLAM_BOOTSTRAP_ADMIN_TOKEN": token},
    )
    base = f"http://127.0.0.1:{port}"
    auth = {"Authorization": f"Bearer {token}"}
    try:
        wait_until_up(f"{base}/api/v1/health", proc)
        with httpx.Client(base_url=base, timeout=30) as client:
            queued = client.post(
                "/api/v1/goals",
                json={"goal": "write 'x' to x.md", "model": "offline"},
                headers=auth,
            )
            assert queued.status_code == 202, queued.text
            run_id = queued.json()["run_id"]
            for path, comment in (
                (f"/api/v1/runs/{run_id}/events", ": ping"),
                (f"/runs/{run_id}/live", ": still here"),
            ):
                lines = first_lines(client, path, auth, wait=4 * PING)
                pings = [t for t, line in lines if line.startswith(comment)]
                assert pings, (path, lines)
                assert pings[0] <= PING + 1.0, (path, lines)  # within the interval (+ slack)
                assert len(pings) >= 2, (path, lines)  # and again while it stays quiet
                assert not [line for _, line in lines if line.startswith(("event:", "data:"))]
    finally:
        log = stop(proc)
    assert "token bootstrap-admin (admin) provisioned" in log, log


def test_the_interval_is_read_from_the_environment_or_the_configuration(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Conf:
        raw: dict = {}

    monkeypatch.delenv("OPENLAM_SSE_PING", raising=False)
    assert ping_seconds(Conf()) == PING_SECONDS == 15.0
    Conf.raw = {"server": {"sse_ping": 5}}
    assert ping_seconds(Conf()) == 5.0
    monkeypatch.setenv("OPENLAM_SSE_PING", "0.5")
    assert ping_seconds(Conf()) == 0.5  # the environment wins
    for bad in ("soon", "0", "100000"):
        monkeypatch.setenv("OPENLAM_SSE_PING", bad)
        with pytest.raises(UserError):
            ping_seconds(Conf())
