"""Tokens (hashed at rest), roles, the dashboard's session cookie with CSRF, the open
loopback mode of a fresh install, and refusing a public address without auth."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from openlam.config import load_settings
from openlam.errors import UserError
from openlam.memory.store import Store
from openlam.server.credentials import check_password, hash_password
from tests.server.conftest import Server

GOAL = {"goal": "write 'hi' to hi.md", "model": "offline"}


async def test_tokens_are_stored_only_as_hashes_and_revocation_refuses_them(server: Server) -> None:
    creds = server.credentials()
    info, token = creds.create_token("ci", "viewer")
    with creds.engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT * FROM server_tokens").all()
    assert token not in repr(rows)
    assert hashlib.sha256(token.encode()).hexdigest() in repr(rows)
    headers = {"Authorization": f"Bearer {token}"}
    assert (await server.client.get("/api/v1/runs", headers=headers)).status_code == 200
    creds.revoke_token(info.id)
    from openlam.server import auth

    auth._State.cache.clear()  # instead of waiting CACHE_SECONDS
    reply = await server.client.get("/api/v1/runs", headers=headers)
    assert reply.status_code == 401 and reply.json()["title"] == "Unknown or revoked token"
    bad = await server.client.get("/api/v1/runs", headers={"Authorization": "Basic x"})
    assert bad.status_code == 401


@pytest.mark.parametrize(
    ("role", "submit", "approve", "add_schedule"),
    [
        ("viewer", 403, 403, 403),
        ("operator", 202, 403, 403),
        ("approver", 202, 404, 403),
        ("admin", 202, 404, 422),
    ],
)
async def test_each_role_may_do_what_it_should(
    server: Server, role: str, submit: int, approve: int, add_schedule: int
) -> None:
    headers = server.token(role)
    assert (await server.client.get("/api/v1/runs", headers=headers)).status_code == 200
    reply = await server.client.post("/api/v1/goals", json=GOAL, headers=headers)
    assert reply.status_code == submit
    reply = await server.client.post("/api/v1/approvals/ap-none/approve", headers=headers)
    assert reply.status_code == approve
    reply = await server.client.post("/api/v1/schedules", json={}, headers=headers)
    assert reply.status_code == add_schedule


async def test_the_session_cookie_works_and_changes_need_the_csrf_token(server: Server) -> None:
    creds = server.credentials()
    creds.add_user("dana", "operator", "correct horse battery")
    wrong = await server.client.post(
        "/api/v1/session", json={"user": "dana", "password": "wrong password"}
    )
    assert wrong.status_code == 401
    login = await server.client.post(
        "/api/v1/session", json={"user": "dana", "password": "correct horse battery"}
    )
    assert login.status_code == 201, login.text
    cookie = login.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie.replace("Lax", "lax")
    csrf = login.json()["csrf_token"]
    me = await server.client.get("/api/v1/session")
    assert me.json() == {"name": "dana", "role": "operator", "via": "user", "csrf_token": csrf}
    without = await server.client.post("/api/v1/goals", json=GOAL)
    assert without.status_code == 403 and "CSRF" in without.json()["title"]
    forged = await server.client.post("/api/v1/goals", json=GOAL, headers={"X-CSRF-Token": "guess"})
    assert forged.status_code == 403
    ok = await server.client.post("/api/v1/goals", json=GOAL, headers={"X-CSRF-Token": csrf})
    assert ok.status_code == 202
    await server.wait_run(ok.json()["run_id"])
    tampered = server.client.cookies.get("openlam_session").replace("A", "B", 1)
    server.client.cookies.set("openlam_session", tampered)
    assert (await server.client.get("/api/v1/runs")).status_code == 401
    server.client.cookies.clear()
    logout_login = await server.client.post(
        "/api/v1/session", json={"user": "dana", "password": "correct horse battery"}
    )
    out = await server.client.delete(
        "/api/v1/session", headers={"X-CSRF-Token": logout_login.json()["csrf_token"]}
    )
    assert out.status_code == 204
    assert (await server.client.get("/api/v1/runs")).status_code == 401


async def test_a_fresh_install_on_loopback_serves_its_user_but_not_a_foreign_host(
    server: Server,
) -> None:
    local = await server.client.get("/api/v1/session")
    assert local.status_code == 200 and local.json()["role"] == "admin"
    rebound = await server.client.get("/api/v1/runs", headers={"Host": "evil.example"})
    assert rebound.status_code == 401  # DNS rebinding: a foreign name is not local
    cross = await server.client.post(
        "/api/v1/goals", json=GOAL, headers={"Origin": "https://evil.example"}
    )
    assert cross.status_code == 401
    server.token("admin")  # the first token turns authentication on
    from openlam.server import auth

    auth._State.cache.clear()
    assert (await server.client.get("/api/v1/runs")).status_code == 401


def test_passwords_use_scrypt_with_a_salt() -> None:
    one, two = hash_password("s3cret pass"), hash_password("s3cret pass")
    assert one != two and one.startswith("scrypt$")
    assert check_password("s3cret pass", one) and not check_password("s3cret pasS", one)


def test_a_public_address_is_refused_without_auth(workspace: Path) -> None:
    from openlam.cli.serve import check_listen_address

    settings = load_settings(workspace)
    with pytest.raises(UserError, match=r"refusing to listen on 0\.0\.0\.0") as refused:
        check_listen_address(settings, "0.0.0.0")
    assert "openlam tokens create" in refused.value.hint
    check_listen_address(settings, "127.0.0.1")
    check_listen_address(settings, "::1")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "openlam",
            "serve",
            "--host",
            "0.0.0.0",
            "--workspace",
            str(workspace),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "refusing to listen on 0.0.0.0" in proc.stderr
    assert "Traceback" not in proc.stderr
    from openlam.server.credentials import Credentials

    Credentials(Store(settings.app_database_url).engine).add_user(
        "root", "admin", "long enough pass"
    )
    check_listen_address(settings, "0.0.0.0")  # now someone must log in


def test_tokens_cli_prints_the_token_once_and_lists_without_it(workspace: Path) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "openlam", *args, "--workspace", str(workspace)],
            capture_output=True,
            text=True,
            timeout=60,
        )

    made = cli("tokens", "create", "deploy", "--role", "operator")
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert token.startswith("olam_") and len(token) > 40
    listed = cli("tokens", "list")
    assert "deploy" in listed.stdout and "operator" in listed.stdout
    assert token not in listed.stdout
    bad = cli("tokens", "create", "x", "--role", "boss")
    assert bad.returncode == 2 and "unknown role 'boss'" in bad.stderr
    assert cli("tokens", "revoke", "deploy").returncode == 0
    engine = Store(load_settings(workspace).app_database_url).engine
    with engine.connect() as conn:
        revoked = conn.execute(sa.text("SELECT revoked_at FROM server_tokens")).scalar()
    assert revoked is not None
