"""A real ``openlam serve`` (uvicorn, its own queue worker, the offline planner) over a
workspace where writing ``needs-approval*`` waits for a person — shared by the
OpenAI, Ollama and MCP-over-HTTP tests of this directory."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from openlam.config import load_settings
from openlam.memory.store import Store
from openlam.server.credentials import Credentials
from tests.conftest import allow_policy

APPROVAL_PREFIX = "needs-approval"  # files named so wait for approval
POLICY = f"""
rules:
  - id: ask-before-{APPROVAL_PREFIX}
    action: files.write
    when: {{args: {{path: {{matches: "^{APPROVAL_PREFIX}"}}}}}}
    decision: require_approval
    reason: this file is reviewed before it is written
"""


@dataclass
class LiveServer:
    url: str
    workspace: Path
    tokens: dict[str, str]  # role -> token

    def bearer(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def offline_env() -> dict[str, str]:
    """The offline planner, whatever this machine offers (no Ollama, no keys)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OPENLAM_", "OPENAI_", "ANTHROPIC_"))
    }
    return {**env, "OPENLAM_MODEL": "offline"}


@pytest.fixture(scope="package")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    workspace = tmp_path_factory.mktemp("compat") / "ws"
    workspace.mkdir()
    allow_policy(workspace, POLICY)
    credentials = Credentials(Store(load_settings(workspace).app_database_url).engine)
    tokens = {
        role: credentials.create_token(f"{role}-client", role)[1]
        for role in ("viewer", "operator", "approver")
    }
    port = free_port()
    log = (workspace.parent / "serve.log").open("w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "openlam",
            "serve",
            "--workspace",
            str(workspace),
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=offline_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{url}/api/v1/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                log.flush()
                raise AssertionError(
                    "openlam serve did not start:\n" + (workspace.parent / "serve.log").read_text()
                )
            time.sleep(0.2)
        yield LiveServer(url, workspace, tokens)
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
