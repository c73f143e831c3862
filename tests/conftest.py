"""Shared fixtures: workspaces, local web services, fake model servers, PostgreSQL."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from openlam.config import Settings, load_settings
from tests.fakes.http import FakeHTTPServer, Response

PG_ADMIN_URL = "postgresql://127.0.0.1:5432/test"


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    return ws


@pytest.fixture
def settings(workspace: Path) -> Settings:
    return load_settings(workspace).with_overrides(step_timeout=5.0)


class Site:
    """A local web site: /page.html, /data.json, /error500, /slow?s=N, /hits/<name>, and
    /together/<name>?n=N, which answers only when N requests are waiting at once (a test
    that the requests really ran concurrently)."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.server = FakeHTTPServer(self.handle)
        self._barriers: dict[int, threading.Barrier] = {}
        self._lock = threading.Lock()

    def barrier(self, n: int) -> threading.Barrier:
        with self._lock:
            return self._barriers.setdefault(n, threading.Barrier(n))

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Response:
        if path.startswith("/page"):
            html = (
                b"<html><head><title>Acme</title></head><body><h1>Acme Corp</h1>"
                b"<p>Acme sells anvils. Contact: sales@acme.test</p></body></html>"
            )
            return 200, {"Content-Type": "text/html; charset=utf-8"}, html
        if path.startswith("/data.json"):
            return (
                200,
                {"Content-Type": "application/json"},
                b'{"company": "Acme", "email": "sales@acme.test"}',
            )
        if path.startswith("/error500"):
            return 500, {"Content-Type": "text/plain"}, b"internal trouble"
        if path.startswith("/slow"):
            seconds = float(path.split("s=", 1)[1]) if "s=" in path else 10.0
            self.release.wait(seconds)
            return 200, {"Content-Type": "text/plain"}, b"slow answer"
        if path.startswith("/together/"):  # answers only when n requests wait at once
            name, _, query = path.removeprefix("/together/").partition("?n=")
            barrier = self.barrier(int(query or 2))
            try:
                barrier.wait(timeout=10)
            except threading.BrokenBarrierError:
                return 503, {"Content-Type": "text/plain"}, b"requests did not arrive together"
            page = (
                f"<html><head><title>{name}</title></head><body><h1>{name.title()}</h1>"
                f"<p>{name.title()} sells widgets at low prices.</p></body></html>"
            )
            return 200, {"Content-Type": "text/html"}, page.encode()
        if path.startswith("/big"):  # a step result over the journal's inline limit
            rows = "".join(f"<p>Paragraph {i} of a long page.</p>" for i in range(10_000))
            return 200, {"Content-Type": "text/html"}, f"<html><body>{rows}</body></html>".encode()
        if path.startswith("/hits/"):
            return 200, {"Content-Type": "text/plain"}, f"hit {path}".encode()
        return 404, {"Content-Type": "text/plain"}, b"not found"

    @property
    def url(self) -> str:
        return self.server.url

    def hits(self, prefix: str) -> int:
        return self.server.count(prefix)


@pytest.fixture
def site() -> Iterator[Site]:
    s = Site()
    with s.server:
        yield s
        s.release.set()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database on the machine's server, dropped afterwards."""
    sqlalchemy = pytest.importorskip("sqlalchemy")
    admin = sqlalchemy.create_engine(
        PG_ADMIN_URL.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT"
    )
    name = f"openlam_t_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {name}")
    except Exception as exc:  # the machine kind promises a server; say clearly if it is gone
        pytest.fail(f"PostgreSQL at {PG_ADMIN_URL} is not usable: {exc}")
    yield f"postgresql://127.0.0.1:5432/{name}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    admin.dispose()


def allow_policy(workspace: Path, text: str) -> None:
    """A workspace policy file (governance reads <workspace>/policies/*.yaml)."""
    policies = workspace / "policies"
    policies.mkdir(exist_ok=True)
    (policies / "test.yaml").write_text(text)


LOCAL_NETWORK = '\n[network]\nallow_networks = ["127.0.0.0/8", "::1/128"]\n'
"""openlam.toml lines that let actions reach this machine's test servers (loopback is
refused by default); append them to a workspace's configuration."""


def allow_local_network(workspace: Path) -> None:
    """Let the workspace's actions reach servers on loopback (the test's fakes)."""
    config = workspace / "openlam.toml"
    existing = config.read_text(encoding="utf-8") if config.exists() else ""
    config.write_text(existing + LOCAL_NETWORK, encoding="utf-8")


@pytest.fixture
def local_network(workspace: Path) -> None:
    """The workspace's actions may reach loopback servers. Request it with
    ``@pytest.mark.usefixtures("local_network")`` (set up before ``settings`` reads the
    configuration)."""
    allow_local_network(workspace)


def wait_for(predicate: Any, timeout: float = 10.0, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False
