"""Running the real ``openlam`` command in subprocesses, as users do."""

from __future__ import annotations

import fcntl
import os
import pty
import socket
import struct
import subprocess
import sys
import termios
import time
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


def on_a_terminal(workspace: Path, columns: int, *args: str) -> tuple[int, str]:
    """``openlam ARGS`` on a pseudo-terminal ``columns`` wide: its exit code and all it
    wrote, as the terminal received it (styles and all; line ends as ``\\r\\n``)."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "openlam", *args, "--workspace", str(workspace)],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env={**os.environ, "COLUMNS": str(columns), "TERM": "xterm"},
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the command ended and closed its side
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    return proc.wait(timeout=120), b"".join(chunks).decode()


def status_of_announced_body(port: int, path: str, length: int | str, headers: str = "") -> int:
    """The status a server on ``port`` answers a POST whose Content-Length announces
    ``length`` bytes, none of them sent: a server that waits for the body before it refuses
    one too large answers nothing (socket.timeout after 15 s)."""
    with socket.create_connection(("127.0.0.1", port), timeout=15) as conn:
        conn.sendall(
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"{headers}Content-Length: {length}\r\n\r\n".encode()
        )
        return int(conn.recv(4096).split(b" ", 2)[1])


def wait_until_up(url: str, proc: subprocess.Popen[str], timeout: float = 60.0) -> None:
    """Wait until ``GET url`` answers 200; if ``proc`` exits first or the time runs out,
    fail with what it printed."""
    import httpx

    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            out, err = proc.communicate()
            raise AssertionError(f"{url} did not come up:\n{out or ''}{err or ''}")
        time.sleep(0.2)
