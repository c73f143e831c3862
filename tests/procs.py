"""Running the real ``openlam`` command in subprocesses, as users do."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def openlam(
    workspace: Path, *args: str, env: dict[str, str] | None = None, **kwargs
) -> subprocess.Popen[str]:
    """Start ``openlam ARGS --workspace WORKSPACE`` with text pipes."""
    return subprocess.Popen(
        [sys.executable, "-m", "openlam", *args, "--workspace", str(workspace)],
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def model_env(server_url: str, **extra: str) -> dict[str, str]:
    """Environment that points openai:* models at a fake OpenAI-compatible server."""
    return {"OPENLAM_OPENAI_BASE_URL": f"{server_url}/v1", **extra}


def allow_local_network(workspace: Path, extra: str = "") -> None:
    """A fresh openlam.toml: actions may reach the tests' loopback servers, plus ``extra``."""
    from tests.conftest import LOCAL_NETWORK

    (workspace / "openlam.toml").write_text(extra + LOCAL_NETWORK, encoding="utf-8")
