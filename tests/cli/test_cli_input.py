"""Bad input at the door (issue 8): bytes that are not UTF-8, empty goals and workspaces
that do not exist get one clear error and exit code 2 — never a traceback, never a new
empty workspace."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from openlam import config
from openlam.cli.main import _install, app
from openlam.errors import UserError


def openlam(cwd: Path, *args: str | bytes, env: dict | None = None) -> subprocess.CompletedProcess:
    """The real entry point; arguments may be bytes, as a shell can pass them."""
    return subprocess.run(
        [sys.executable, "-m", "openlam", *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        timeout=60,
    )


def test_a_goal_with_invalid_utf8_is_refused(workspace: Path):
    done = openlam(workspace, "run", b"write '\xff' to x.md", "--workspace", str(workspace))
    err = done.stderr.decode()
    assert done.returncode == 2, err
    assert "not valid UTF-8 at position 7" in err and "write '\\xff' to x.md" in err
    assert "Traceback" not in err
    assert not (workspace / ".openlam").exists()  # refused before anything started


def test_every_argument_is_checked_not_only_the_goal(workspace: Path):
    done = openlam(
        workspace, "runs", "answer", "run-x", "s1", b"yes \xe9", "--workspace", str(workspace)
    )
    err = done.stderr.decode()
    assert done.returncode == 2 and "argument 5" in err and "position 4" in err, err
    assert "Traceback" not in err


@pytest.mark.parametrize("goal", ["", "   \n\t"])
def test_an_empty_goal_is_refused(workspace: Path, goal: str):
    done = openlam(workspace, "run", goal, "--workspace", str(workspace))
    err = done.stderr.decode()
    assert done.returncode == 2 and "the goal is empty" in err, err
    assert "Traceback" not in err


def test_the_cli_refuses_a_workspace_that_does_not_exist(tmp_path: Path):
    missing = tmp_path / "no" / "such" / "dir"
    done = openlam(tmp_path, "run", "write 'hi' to hi.md", "--workspace", str(missing))
    err = done.stderr.decode()
    assert done.returncode == 2, err
    assert f"the workspace {missing} does not exist" in err
    assert f"openlam init {missing}" in err
    assert not missing.exists() and not (tmp_path / "no").exists()
    from_env = openlam(tmp_path, "runs", "list", env={"OPENLAM_WORKSPACE": str(missing)})
    assert from_env.returncode == 2 and "does not exist" in from_env.stderr.decode()
    assert not missing.exists()
    (tmp_path / "file").write_text("x")
    a_file = openlam(tmp_path, "runs", "list", "--workspace", str(tmp_path / "file"))
    assert a_file.returncode == 2 and "is not a directory" in a_file.stderr.decode()
    assert "openlam init" not in a_file.stderr.decode()  # it would refuse a file too
    init_a_file = openlam(tmp_path, "init", str(tmp_path / "file"))
    assert init_a_file.returncode == 2 and "is a file" in init_a_file.stderr.decode()
    created = openlam(tmp_path, "init", str(missing))  # the fix the message names works
    assert created.returncode == 0 and (missing / "openlam.toml").exists()
    listed = openlam(tmp_path, "runs", "list", "--workspace", str(missing))
    assert listed.returncode == 0 and "No runs yet" in listed.stdout.decode()


def _commands_with_a_workspace() -> list[list[str]]:
    """Every command that takes --workspace except init, with placeholder arguments."""
    _install()
    found: list[list[str]] = []

    def walk(command: Any, path: list[str]) -> None:
        if hasattr(command, "commands"):  # a group
            for name, sub in command.commands.items():
                walk(sub, [*path, name])
            return
        if path == ["init"] or not any(p.name == "workspace" for p in command.params):
            return
        args = list(path)
        for param in command.params:
            if param.required and param.param_type_name == "option":
                args += [param.opts[0], "x=1"]
            elif param.required:
                args.append("x")
        found.append(args)

    walk(typer.main.get_command(app), [])
    return found


@pytest.mark.parametrize("command", _commands_with_a_workspace(), ids=" ".join)
def test_every_command_refuses_a_missing_workspace(
    tmp_path: Path, command: list[str], monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(config, "_refuse_missing", True)  # what the CLI's main() turns on
    missing = tmp_path / "missing"
    result = CliRunner().invoke(app, [*command, "--workspace", str(missing)], input="v\nv\n")
    assert isinstance(result.exception, UserError), result.output
    assert f"the workspace {missing} does not exist" in str(result.exception)
    assert not missing.exists()


def test_the_python_api_still_creates_a_workspace(tmp_path: Path):
    from openlam.config import load_settings

    missing = tmp_path / "new"
    assert load_settings(missing).workspace == missing  # the API's default: no check
    with pytest.raises(UserError, match="does not exist"):
        load_settings(missing, must_exist=True)


def test_answering_as_someone_else_needs_the_admin_role(workspace: Path):
    """Issue 8 §7: a person's answer steers a run like an approval does; `--as` is not a
    way around the OS user."""
    (workspace / "openlam.toml").write_text('[governance]\nadmins = ["somebody-else"]\n')
    done = openlam(
        workspace,
        "runs",
        "answer",
        "run-x",
        "s1",
        "yes",
        "--as",
        "mallory",
        "--workspace",
        str(workspace),
    )
    err = done.stderr.decode()
    assert done.returncode == 2 and "deciding as mallory needs the admin role" in err, err
    assert "--as" not in err


@pytest.mark.parametrize(
    "command", [("audit", "export", "--out"), ("learn", "dump", "--output")], ids=str
)
def test_an_output_path_that_is_a_folder_is_named(workspace: Path, command: tuple[str, ...]):
    done = openlam(workspace, *command, str(workspace), "--workspace", str(workspace))
    err = done.stderr.decode()
    assert done.returncode == 2, err
    assert f"error: {workspace}: Is a directory" in err
    assert "fix: give the path of a file" in err and "internal error" not in err


@pytest.mark.skipif(not Path("/proc/version").exists(), reason="needs Linux's /proc")
def test_an_output_the_system_refuses_to_write_is_an_error_not_a_bug(workspace: Path):
    # as root, /proc/version opens for writing and the write fails (EIO); as anyone
    # else, the open is refused: either way one error naming the problem
    ran = openlam(
        workspace,
        "run",
        "write 'x' to x.md",
        "--workspace",
        str(workspace),
        env={"OPENLAM_MODEL": "offline"},
    )
    assert ran.returncode == 0, ran.stderr.decode()  # audit records to export
    done = openlam(
        workspace, "audit", "export", "--out", "/proc/version", "--workspace", str(workspace)
    )
    err = done.stderr.decode()
    assert done.returncode == 2, err
    assert "internal error" not in err
    assert "failed to read or write" in err or "Permission denied" in err


@pytest.mark.parametrize(
    ("file", "command"),
    [
        ("openlam.toml", ("runs", "list")),
        ("policies/org.yaml", ("run", "write 'x' to x.md")),
        ("specs/shop.yaml", ("openapi", "add", "shop", "specs/shop.yaml")),
    ],
)
def test_a_hand_written_file_that_is_not_utf8_is_named(
    workspace: Path, file: str, command: tuple[str, ...]
):
    """Saved as Latin-1 or Windows-1252 by an editor: was 'internal error … bug'."""
    target = workspace / file
    target.parent.mkdir(parents=True, exist_ok=True)
    text = "[openlam]\n# café\n" if file.endswith(".toml") else "# café\nrules: []\n"
    target.write_bytes(text.encode("latin-1"))
    done = openlam(workspace, *command, "--workspace", str(workspace))
    err = done.stderr.decode()
    assert done.returncode == 2, err
    assert f"{target} is not UTF-8 text: byte 0xe9 on line" in err
    assert "internal error" not in err


def test_files_a_plan_wrote_in_the_workspace_are_not_imported_as_code(workspace: Path):
    """`python -m openlam` in a workspace: Python puts the current directory first on the
    import path, and plans write files there. A plan's typer.py (or httpx.py…) must stay a
    file, not become code the next start runs."""
    marker = workspace / "ran.txt"
    env = {"OPENLAM_MODEL": "offline"}
    plan = f'write \'open({str(marker)!r}, "w").write("x")\' to typer.py'
    done = openlam(workspace, "run", plan, "--workspace", str(workspace), env=env)
    assert done.returncode == 0, done.stderr.decode()
    assert (workspace / "typer.py").is_file()
    done = openlam(workspace, "runs", "list", env=env)
    assert done.returncode == 0, done.stderr.decode()
    assert not marker.exists()
