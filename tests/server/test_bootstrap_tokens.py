"""Tokens provisioned from the environment (``OPENLAM_BOOTSTRAP_ADMIN_TOKEN``,
``OPENLAM_TOKENS_FILE``), as a container gets them: stored hashed, idempotently, a new
value replacing the old, a revoked one not coming back, bad input refused with the fix
before anything is written. (The entrypoint path: tests/deploy/test_entrypoint.py.)"""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
import sqlalchemy as sa

from openlam.config import load_settings
from openlam.errors import UserError
from openlam.memory.store import Store
from openlam.memory.tables import server_tokens
from openlam.server.auth import authenticate_token
from openlam.server.credentials import Credentials, provision_from_env


def new() -> str:
    return "olam_" + secrets.token_urlsafe(32)


@pytest.fixture
def creds(workspace: Path) -> Credentials:
    return Credentials(Store(load_settings(workspace).app_database_url).engine)


def test_the_bootstrap_admin_token_is_stored_hashed_once(creds: Credentials) -> None:
    token = new()
    env = {"OPENLAM_BOOTSTRAP_ADMIN_TOKEN": token}
    assert provision_from_env(creds, env) == ["token bootstrap-admin (admin) provisioned"]
    assert provision_from_env(creds, env) == ["token bootstrap-admin (admin) already provisioned"]
    assert [(t.name, t.role) for t in creds.tokens()] == [("bootstrap-admin", "admin")]
    principal = authenticate_token(creds, token)
    assert principal is not None and principal.role.name == "admin"
    with creds.engine.connect() as conn:
        stored = [tuple(r) for r in conn.execute(sa.select(server_tokens))]
    assert not any(token in str(column) for row in stored for column in row)  # only its hash
    assert creds.any_configured()


def test_a_new_value_replaces_the_old_and_a_revoked_one_stays_revoked(
    creds: Credentials,
) -> None:
    first, second = new(), new()
    provision_from_env(creds, {"OPENLAM_BOOTSTRAP_ADMIN_TOKEN": first})
    said = provision_from_env(creds, {"OPENLAM_BOOTSTRAP_ADMIN_TOKEN": second})
    assert said == ["token bootstrap-admin (admin) provisioned, replacing 1 older one(s)"]
    assert authenticate_token(creds, first) is None  # rotated out
    assert authenticate_token(creds, second) is not None
    creds.revoke_token("bootstrap-admin")
    again = provision_from_env(creds, {"OPENLAM_BOOTSTRAP_ADMIN_TOKEN": second})
    assert "stays revoked" in again[0]
    assert authenticate_token(creds, second) is None


def test_a_tokens_file_provisions_each_line(creds: Credentials, tmp_path: Path) -> None:
    ci, viewer = new(), new()
    path = tmp_path / "tokens"
    path.write_text(f"# name role token\nci operator {ci}\n\ndash viewer {viewer}\n")
    said = provision_from_env(creds, {"OPENLAM_TOKENS_FILE": str(path)})
    assert said == ["token ci (operator) provisioned", "token dash (viewer) provisioned"]
    assert {t.name: t.role for t in creds.tokens()} == {"ci": "operator", "dash": "viewer"}
    path.write_text(f"ci approver {ci}\n")  # the same value, another role: updated
    assert provision_from_env(creds, {"OPENLAM_TOKENS_FILE": str(path)}) == [
        "token ci (approver) updated"
    ]


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"OPENLAM_BOOTSTRAP_ADMIN_TOKEN": "hunter2"}, "must start with 'olam_'"),
        ({"OPENLAM_BOOTSTRAP_ADMIN_TOKEN": "olam_short"}, "at least 37 characters"),
        ({"OPENLAM_TOKENS_FILE": "/nonexistent/tokens"}, "cannot read the tokens file"),
    ],
)
def test_unusable_input_is_refused_with_the_fix(creds: Credentials, env, says) -> None:
    with pytest.raises(UserError) as refused:
        provision_from_env(creds, env)
    assert says in str(refused.value)
    assert creds.tokens() == []


def test_a_bad_line_refuses_the_whole_file(creds: Credentials, tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text(f"ci operator {new()}\nbroken line\n")
    with pytest.raises(UserError, match="line 2: expected NAME ROLE TOKEN"):
        provision_from_env(creds, {"OPENLAM_TOKENS_FILE": str(path)})
    path.write_text(f"ci overlord {new()}\n")
    with pytest.raises(UserError, match="unknown role"):
        provision_from_env(creds, {"OPENLAM_TOKENS_FILE": str(path)})
    assert creds.tokens() == []
    assert provision_from_env(creds, {"OPENLAM_BOOTSTRAP_ADMIN_TOKEN": ""}) == []
