"""The Docker image's entrypoint, run directly (this machine has the docker CLI but no
daemon, so the image itself is not built here): it initialises an empty workspace,
serves on 0.0.0.0 with the admin user it is given, refuses to serve unauthenticated,
starts a worker, and runs any other command as given. compose.yaml and the Dockerfile
are checked against what they rely on."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import yaml

from tests.server.compat.conftest import free_port, offline_env

ROOT = Path(__file__).resolve().parents[2]
ENTRYPOINT = ROOT / "docker" / "entrypoint.sh"


def env(workspace: Path, **extra: str) -> dict[str, str]:
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    return {**offline_env(), "PATH": path, "OPENLAM_WORKSPACE": str(workspace), **extra}


def entrypoint(workspace: Path, *args: str, **extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        ["sh", str(ENTRYPOINT), *args],
        env=env(workspace, **extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_serve_initialises_the_workspace_and_answers_health(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"  # does not exist yet: a fresh volume
    port = free_port()
    proc = entrypoint(
        workspace, "serve", OPENLAM_PORT=str(port), OPENLAM_ADMIN_PASSWORD="correct horse battery"
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=2)
                if health.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, proc.communicate()[0]
            assert time.monotonic() < deadline, "the server did not come up"
            time.sleep(0.3)
        assert (workspace / "openlam.toml").is_file()
        # the admin user it was given can log in; anonymous requests are refused
        assert httpx.get(f"http://127.0.0.1:{port}/api/v1/runs").status_code == 401
        login = httpx.post(
            f"http://127.0.0.1:{port}/api/v1/session",
            json={"user": "admin", "password": "correct horse battery"},
        )
        assert login.status_code in (200, 201), login.text
    finally:
        proc.terminate()
        out = proc.communicate(timeout=30)[0]
    assert "initialising the workspace" in out


def wait_healthy(proc: subprocess.Popen[str], port: int) -> None:
    deadline = time.monotonic() + 90
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert proc.poll() is None, proc.communicate()[0]
        assert time.monotonic() < deadline, "the server did not come up"
        time.sleep(0.3)


def test_serve_provisions_tokens_from_the_environment_idempotently(tmp_path: Path) -> None:
    """`docker compose up` with a token secret: a working API without exec-ing into the
    container, and a restart with the same secret adds nothing."""
    import secrets

    from openlam.config import load_settings
    from openlam.memory.store import Store
    from openlam.server.credentials import Credentials

    workspace = tmp_path / "ws"
    admin, ci = ("olam_" + secrets.token_urlsafe(32) for _ in range(2))
    tokens_file = tmp_path / "openlam_tokens"  # as a compose secret is mounted
    tokens_file.write_text(f"ci operator {ci}\n")
    given = {"OPENLAM_BOOTSTRAP_ADMIN_TOKEN": admin, "OPENLAM_TOKENS_FILE": str(tokens_file)}
    for start in (1, 2):
        port = free_port()
        proc = entrypoint(workspace, "serve", OPENLAM_PORT=str(port), **given)
        try:
            wait_healthy(proc, port)  # no password, no user: the token is the credential
            base = f"http://127.0.0.1:{port}/api/v1"
            assert httpx.get(f"{base}/runs").status_code == 401
            as_admin = {"Authorization": f"Bearer {admin}"}
            assert httpx.get(f"{base}/runs", headers=as_admin).status_code == 200
            assert httpx.get(f"{base}/sources", headers=as_admin).status_code == 200
            as_ci = {"Authorization": f"Bearer {ci}"}
            assert httpx.get(f"{base}/runs", headers=as_ci).status_code == 200
            refused = httpx.post(
                f"{base}/schedules", headers=as_ci, json={"when": "every day", "goal": "x"}
            )
            assert refused.status_code == 403  # an operator, as the file says
        finally:
            proc.terminate()
            out = proc.communicate(timeout=30)[0]
        said = "provisioned" if start == 1 else "already provisioned"
        assert f"token bootstrap-admin (admin) {said}" in out, out
        assert f"token ci (operator) {said}" in out, out
        assert admin not in out and ci not in out  # the secrets are never logged
    creds = Credentials(Store(load_settings(workspace).app_database_url).engine)
    assert sorted((t.name, t.role) for t in creds.tokens()) == [
        ("bootstrap-admin", "admin"),
        ("ci", "operator"),
    ]


def test_serve_refuses_an_unusable_bootstrap_token(tmp_path: Path) -> None:
    proc = entrypoint(
        tmp_path / "ws", OPENLAM_PORT=str(free_port()), OPENLAM_BOOTSTRAP_ADMIN_TOKEN="hunter2"
    )
    out = proc.communicate(timeout=60)[0]
    assert proc.returncode == 2, out
    assert "must start with 'olam_'" in out and "secrets.token_urlsafe" in out


def test_serve_without_credentials_refuses_with_the_fix(tmp_path: Path) -> None:
    proc = entrypoint(tmp_path / "ws", OPENLAM_PORT=str(free_port()))
    out = proc.communicate(timeout=60)[0]
    assert proc.returncode == 2, out
    assert "refusing to listen on 0.0.0.0" in out and "openlam tokens create" in out


def test_an_existing_workspace_is_left_as_it_is(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "openlam.toml").write_text("# mine\n")
    proc = entrypoint(workspace, "openlam", "tokens", "create", "ci", "--role", "operator")
    out = proc.communicate(timeout=60)[0]
    assert proc.returncode == 0, out
    assert "olam_" in out and "initialising" not in out
    assert (workspace / "openlam.toml").read_text() == "# mine\n"


def test_worker_command_starts_a_worker(tmp_path: Path) -> None:
    port = free_port()
    proc = entrypoint(tmp_path / "ws", "worker", "--port", str(port))
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, proc.communicate()[0]
            assert time.monotonic() < deadline, "the worker did not come up"
            time.sleep(0.3)
    finally:
        proc.terminate()
        proc.communicate(timeout=60)


def test_compose_and_dockerfile_hold_together() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"openlam", "worker", "postgres", "ollama"}
    assert services["openlam"]["command"] == ["serve"]
    assert services["worker"]["command"][0] == "worker"
    for name in ("openlam", "worker"):
        env_vars = services[name]["environment"]
        assert env_vars["OPENLAM_DATABASE_URL"].startswith("postgresql://openlam:")
        assert env_vars["OPENLAM_OLLAMA_URL"] == "http://ollama:11434"
        assert "workspace:/workspace" in services[name]["volumes"]
    assert "OPENLAM_ADMIN_PASSWORD" in services["openlam"]["environment"]
    for name in ("OPENLAM_BOOTSTRAP_ADMIN_TOKEN", "OPENLAM_TOKENS_FILE"):
        assert name in services["openlam"]["environment"]  # optional: empty by default
    assert set(compose["volumes"]) == {"workspace", "postgres", "ollama"}
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "scripts/install-system-deps.sh" in dockerfile and "pip install ." in dockerfile
    assert "USER openlam" in dockerfile and "/api/v1/health" in dockerfile
    assert 'ENTRYPOINT ["openlam-entrypoint"]' in dockerfile
    assert "COPY docker/entrypoint.sh /usr/local/bin/openlam-entrypoint" in dockerfile
