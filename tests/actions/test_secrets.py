"""Secrets: the encrypted store through the CLI, the key, the lookup, and redaction."""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import quote

import pytest
import typer
from cryptography.fernet import Fernet
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from openlam.actions.secrets import (
    KEY_ENV,
    KEY_FILE_ENV,
    RedactingFilter,
    Redactor,
    SecretStore,
    known_secret_values,
    redact,
    redact_logging,
    secret_lookup,
)
from openlam.cli import secrets as secrets_cli
from openlam.config import Settings
from openlam.errors import UserError

VALUE = "hunter2-Correct-Horse"


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A workspace and a private config dir; no key in the environment."""
    ws = tmp_path / "ws"
    ws.mkdir()
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv(KEY_ENV, raising=False)
    monkeypatch.delenv(KEY_FILE_ENV, raising=False)
    monkeypatch.setenv("OPENLAM_WORKSPACE", str(ws))
    return ws


@pytest.fixture
def cli() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def root() -> None:
        """openlam"""

    secrets_cli.install(app)
    return app


def invoke(app: typer.Typer, *args: str, stdin: str | None = None):
    return CliRunner().invoke(app, ["secrets", *args], input=stdin)


def store_of(ws: Path) -> SecretStore:
    return SecretStore.for_settings(Settings(workspace=ws))


# ------------------------------------------------------------------------ CLI


def test_set_list_rm_through_the_cli(cli: typer.Typer, workspace: Path) -> None:
    result = invoke(cli, "set", "SMTP_PASSWORD", "--value", VALUE)
    assert result.exit_code == 0, result.output
    result = invoke(cli, "set", "API_TOKEN", stdin="tok-from-stdin-123\n")
    assert result.exit_code == 0, result.output

    listed = invoke(cli, "list")
    assert listed.exit_code == 0
    assert listed.output.split() == ["API_TOKEN", "SMTP_PASSWORD"]
    assert VALUE not in listed.output

    store = store_of(workspace)
    assert store.get("SMTP_PASSWORD") == VALUE
    assert store.get("API_TOKEN") == "tok-from-stdin-123"  # the trailing newline is not kept
    on_disk = store.path.read_bytes()
    assert VALUE.encode() not in on_disk and b"tok-from-stdin" not in on_disk

    removed = invoke(cli, "rm", "API_TOKEN")
    assert removed.exit_code == 0
    assert invoke(cli, "list").output.split() == ["SMTP_PASSWORD"]

    missing = invoke(cli, "rm", "API_TOKEN")
    assert isinstance(missing.exception, UserError)
    assert "no secret 'API_TOKEN'" in str(missing.exception)


def test_set_replaces_a_value_and_refuses_bad_input(cli: typer.Typer, workspace: Path) -> None:
    assert invoke(cli, "set", "TOKEN", "--value", "first-value").exit_code == 0
    assert invoke(cli, "set", "TOKEN", "--value", "second-value").exit_code == 0
    assert store_of(workspace).read() == {"TOKEN": "second-value"}

    bad_name = invoke(cli, "set", "not-a-name", "--value", "x-value")
    assert isinstance(bad_name.exception, UserError)
    empty = invoke(cli, "set", "EMPTY", stdin="")
    assert isinstance(empty.exception, UserError)
    assert "empty" in str(empty.exception)


def test_list_of_an_empty_workspace_prints_nothing(cli: typer.Typer, workspace: Path) -> None:
    result = invoke(cli, "list")
    assert result.exit_code == 0
    assert result.output == ""
    assert not store_of(workspace).exists()


# ------------------------------------------------------------------------ key


def test_generated_key_file_and_store_are_private(
    cli: typer.Typer, workspace: Path, tmp_path: Path
) -> None:
    old = os.umask(0o022)
    try:
        assert invoke(cli, "set", "A_SECRET", "--value", VALUE).exit_code == 0
    finally:
        os.umask(old)
    key_file = tmp_path / "config" / "openlam" / "secret.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_file.parent.stat().st_mode) == 0o700
    Fernet(key_file.read_bytes().strip())  # a valid Fernet key
    assert stat.S_IMODE(store_of(workspace).path.stat().st_mode) == 0o600
    assert not (workspace / ".openlam" / "secret.key").exists()  # the key is not beside it


def test_wrong_key_is_a_clear_user_error(
    cli: typer.Typer, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, Fernet.generate_key().decode())
    assert invoke(cli, "set", "A_SECRET", "--value", VALUE).exit_code == 0

    monkeypatch.setenv(KEY_ENV, Fernet.generate_key().decode())
    result = invoke(cli, "list")
    assert isinstance(result.exception, UserError)
    message = str(result.exception)
    assert "cannot decrypt" in message and "not the key" in message
    assert KEY_ENV in result.exception.hint
    assert VALUE not in message

    monkeypatch.setenv(KEY_ENV, "a passphrase, not a key")
    result = invoke(cli, "list")
    assert isinstance(result.exception, UserError)
    assert "passphrase" in str(result.exception)

    monkeypatch.delenv(KEY_ENV)  # and no key file either
    result = invoke(cli, "list")
    assert isinstance(result.exception, UserError)
    assert "no key is available" in str(result.exception)


def test_passphrase_key(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, "correct horse battery staple")
    store = store_of(workspace)
    store.set("DB_PASSWORD", VALUE)
    envelope = json.loads(store.path.read_text())
    assert envelope["kdf"] == "scrypt" and envelope["salt"]
    assert store.get("DB_PASSWORD") == VALUE
    store.set("OTHER", "other-value")  # the salt is kept: the first value still opens
    assert store.read() == {"DB_PASSWORD": VALUE, "OTHER": "other-value"}

    monkeypatch.setenv(KEY_ENV, "correct horse battery stapler")
    with pytest.raises(UserError, match="not the key"):
        store.read()


def test_key_file_readable_by_others_is_refused(workspace: Path, tmp_path: Path) -> None:
    store = store_of(workspace)
    store.set("A_SECRET", VALUE)
    key_file = tmp_path / "config" / "openlam" / "secret.key"
    key_file.chmod(0o644)
    with pytest.raises(UserError, match="readable by others") as err:
        store.read()
    assert "chmod 600" in err.value.hint


def test_wrong_key_through_the_real_command(workspace: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != KEY_ENV}
    env.update(XDG_CONFIG_HOME=str(tmp_path / "config"), OPENLAM_WORKSPACE=str(workspace))
    command = [sys.executable, "-c", "from openlam.cli.main import main; main()", "secrets"]
    stored = subprocess.run(
        [*command, "set", "A_SECRET"],
        input=VALUE,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert stored.returncode == 0, stored.stderr

    env[KEY_ENV] = Fernet.generate_key().decode()
    listed = subprocess.run([*command, "list"], env=env, capture_output=True, text=True, timeout=60)
    assert listed.returncode == 2
    assert "cannot decrypt" in listed.stderr and "fix:" in listed.stderr
    assert "Traceback" not in listed.stderr


def test_concurrent_writers_lose_nothing(workspace: Path) -> None:
    store = store_of(workspace)
    store.set("FIRST", "first-value")  # generate the key once
    names = [f"NAME_{i}" for i in range(8)]
    threads = [threading.Thread(target=store.set, args=(n, f"value-{n}")) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.names() == sorted(["FIRST", *names])


# --------------------------------------------------------------------- lookup


def test_lookup_environment_first_then_store(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(workspace=workspace)
    store = store_of(workspace)
    store.set("SHARED_TOKEN", "from-the-store")
    store.set("STORE_ONLY", "store-only-value")
    monkeypatch.setenv("SHARED_TOKEN", "from-the-environment")

    redactor = Redactor()
    lookup = secret_lookup(settings, redactor)
    assert lookup("SHARED_TOKEN") == "from-the-environment"
    assert lookup("STORE_ONLY") == "store-only-value"
    assert lookup("NOT_THERE") is None
    assert redactor.values == {"from-the-environment", "store-only-value"}

    store.set("STORE_ONLY", "changed-value")  # a changed file is read again
    assert lookup("STORE_ONLY") == "changed-value"


def test_lookup_with_no_store_needs_no_key(workspace: Path) -> None:
    lookup = secret_lookup(Settings(workspace=workspace))
    assert lookup("ANYTHING") is None
    assert not (workspace / ".openlam").exists()


def test_known_values_cover_store_declared_and_credential_like_env(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store_of(workspace).set("IN_STORE", "stored-secret-value")
    monkeypatch.setenv("PLAIN_NAME", "declared-by-an-action")
    monkeypatch.setenv("SOME_API_TOKEN", "looks-like-a-token")
    monkeypatch.setenv("SOME_KEY_FILE", "/path/to/a/key/file")
    monkeypatch.setenv("UNRELATED", "ordinary-setting-value")
    values = known_secret_values(Settings(workspace=workspace), names=["PLAIN_NAME"])
    assert {"stored-secret-value", "declared-by-an-action", "looks-like-a-token"} <= values
    assert "/path/to/a/key/file" not in values
    assert "ordinary-setting-value" not in values


# ------------------------------------------------------------------ redaction


def test_redacts_nested_values_and_encodings() -> None:
    secret = "s3cr3t/pa ss+word"
    basic = base64.b64encode(f"alice:{secret}".encode()).decode()
    value = {
        "output": {"token": secret, "list": [1, f"prefix {secret} suffix", (secret,)]},
        "url": f"https://alice:{quote(secret, safe='')}@example.test/path?p={quote(secret)}",
        "headers": {"Authorization": f"Basic {basic}"},
        "json": json.dumps({"password": secret}),
        "b64": base64.b64encode(secret.encode()).decode(),
        "hex": secret.encode().hex(),
        secret: "as a key",
        "bytes": f"raw {secret}".encode(),
        "untouched": "nothing secret here",
        "number": 42,
    }
    masked = redact(value, [secret])
    flat = json.dumps(masked, default=lambda b: b.decode())
    for form in (
        secret,
        quote(secret, safe=""),
        quote(secret),
        basic,
        base64.b64encode(secret.encode()).decode(),
        secret.encode().hex(),
    ):
        assert form not in flat
    assert masked["output"]["list"][1] == "prefix *** suffix"
    assert masked["output"]["list"][2] == ("***",)
    assert masked["headers"]["Authorization"] == "Basic ***"
    assert masked["url"].startswith("https://alice:***@example.test/path?p=***")
    assert masked["***"] == "as a key"
    assert masked["bytes"] == b"raw ***"
    assert masked["untouched"] == "nothing secret here"
    assert masked["number"] == 42
    assert value["output"]["token"] == secret  # the original is not modified


def test_numbers_short_values_and_no_secrets() -> None:
    assert redact({"pin": 12345678, "ok": True}, ["12345678"]) == {"pin": "***", "ok": True}
    assert redact("a b c abc", ["abc"]) == "a b c abc"  # too short to tell from text
    assert redact({"x": ["y"]}, []) == {"x": ["y"]}


def test_redactor_learns_values_later() -> None:
    redactor = Redactor()
    assert redactor.text("token=late-arrival-123") == "token=late-arrival-123"
    redactor.add("late-arrival-123")
    assert redactor.text("token=late-arrival-123") == "token=***"


@settings(max_examples=200, deadline=None)
@given(
    secret=st.text(min_size=4, max_size=30).filter(lambda s: s.strip() == s),
    before=st.text(max_size=20),
    after=st.text(max_size=20),
)
def test_a_secret_never_survives_redaction(secret: str, before: str, after: str) -> None:
    redactor = Redactor([secret])
    plain = redactor.text(before + secret + after)
    assert secret not in plain
    as_json = redactor.text(json.dumps({"v": before + secret + after}))
    assert json.dumps(secret)[1:-1] not in as_json
    assert secret not in as_json


def test_logging_filter_masks_messages_arguments_and_tracebacks() -> None:
    secret = "log-secret-value-99"
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger = logging.getLogger("openlam.tests.secrets")
    logger.addHandler(handler)
    logger.propagate = False
    redactor = Redactor([secret])
    try:
        redact_logging(redactor, [handler])
        redact_logging(redactor, [handler])  # attaching twice adds one filter
        assert sum(isinstance(f, RedactingFilter) for f in handler.filters) == 1
        logger.warning("connecting with %s to %s", secret, "smtp.example.test")
        logger.warning(f"inline {secret}")
        try:
            raise RuntimeError(f"login failed for password {secret}")
        except RuntimeError:
            logger.exception("step failed")
    finally:
        logger.removeHandler(handler)
    out = stream.getvalue()
    assert secret not in out
    assert "connecting with *** to smtp.example.test" in out
    assert "inline ***" in out
    assert "RuntimeError: login failed for password ***" in out


def test_set_prompts_hidden_on_a_terminal(workspace: Path, tmp_path: Path) -> None:
    """On a terminal the value is asked twice, not echoed, and stored."""
    import pty
    import select

    env = {k: v for k, v in os.environ.items() if k != KEY_ENV}
    env.update(
        XDG_CONFIG_HOME=str(tmp_path / "config"), OPENLAM_WORKSPACE=str(workspace), TERM="dumb"
    )
    pid, fd = pty.fork()
    if pid == 0:  # the child: `openlam secrets set TYPED_SECRET` on the new terminal
        os.execve(
            sys.executable,
            [
                sys.executable,
                "-c",
                "from openlam.cli.main import main; main()",
                "secrets",
                "set",
                "TYPED_SECRET",
            ],
            env,
        )

    seen = b""

    def read_until(marker: bytes) -> None:
        nonlocal seen
        while marker not in seen:
            ready, _, _ = select.select([fd], [], [], 30)
            assert ready, f"no {marker!r} on the terminal; saw {seen!r}"
            try:
                chunk = os.read(fd, 1024)
            except OSError:  # the child closed the terminal
                chunk = b""
            assert chunk, f"terminal closed before {marker!r}; saw {seen!r}"
            seen += chunk

    try:
        # getpass writes the prompt's last space once it has turned echo off: type after it.
        read_until(b"value of TYPED_SECRET: ")
        os.write(fd, VALUE.encode() + b"\n")
        read_until(b"Repeat for confirmation: ")
        os.write(fd, VALUE.encode() + b"\n")
        read_until(b"stored TYPED_SECRET")
    except BaseException:
        import signal

        os.kill(pid, signal.SIGKILL)  # the child this test started, stuck: end it
        raise
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 0, seen
    assert VALUE.encode() not in seen  # never echoed
    assert store_of(workspace).get("TYPED_SECRET") == VALUE
