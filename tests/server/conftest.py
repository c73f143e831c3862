"""A real server app over a real workspace, with its own queue worker, driven in-process
through httpx's ASGI transport (the lifespan runs as under uvicorn)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from openlam.config import load_settings
from openlam.memory.store import Store
from openlam.server import create_app
from openlam.server.credentials import Credentials

BASE = "http://127.0.0.1"


@dataclass
class Server:
    app: Any
    client: httpx.AsyncClient
    workspace: Path

    def credentials(self) -> Credentials:
        return Credentials(Store(load_settings(self.workspace).app_database_url).engine)

    def token(self, role: str, name: str | None = None) -> dict[str, str]:
        """Headers carrying a new token with ``role``."""
        _info, token = self.credentials().create_token(name or f"{role}-user", role)
        return {"Authorization": f"Bearer {token}"}

    async def wait_run(
        self, run_id: str, headers: dict[str, str] | None = None, timeout: float = 60.0
    ) -> dict[str, Any]:
        """The run once it ended (polling the API)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            reply = await self.client.get(f"/api/v1/runs/{run_id}", headers=headers or {})
            run = reply.json()
            if run.get("status") not in ("queued", "running", "interrupted"):
                return run
            if loop.time() > deadline:
                raise AssertionError(f"run {run_id} did not end: {run.get('status')}")
            await asyncio.sleep(0.1)


async def sse_events(
    client: httpx.AsyncClient, path: str, headers: dict[str, str] | None = None
) -> list[tuple[str, dict]]:
    """Every (event name, data) of a server-sent event stream, until it ends. (httpx's
    ASGI transport hands the body over once the stream ends; that events arrive live is
    tested over a real port, in test_processes.py.)"""
    events: list[tuple[str, dict]] = []
    async with client.stream("GET", path, headers=headers or {}) as reply:
        assert reply.status_code == 200, await reply.aread()
        assert reply.headers["content-type"].startswith("text/event-stream")
        name, data = None, []
        async for line in reply.aiter_lines():
            if line.startswith("event:"):
                name = line.partition(":")[2].strip()
            elif line.startswith("data:"):
                data.append(line.partition(":")[2].strip())
            elif not line and data:
                events.append((name or "message", json.loads("\n".join(data))))
                name, data = None, []
    return events


@pytest.fixture
async def server(workspace: Path) -> AsyncIterator[Server]:
    app = create_app(workspace)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE, timeout=60) as client:
            yield Server(app, client, workspace)


@pytest.fixture
async def no_worker_server(workspace: Path) -> AsyncIterator[Server]:
    app = create_app(workspace, run_worker=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE, timeout=60) as client:
            yield Server(app, client, workspace)
