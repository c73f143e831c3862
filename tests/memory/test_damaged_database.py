"""A workspace whose database file was damaged (a disk error, a bad copy, another program
writing over it): every command names the file and what to do about it — no traceback,
no "internal error" — and doing what it says brings the workspace back."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.procs import openlam


def run(workspace: Path, *args: str) -> tuple[int, str]:
    proc = openlam(workspace, *args)
    out, err = proc.communicate(timeout=120)
    return proc.returncode, out + err


def damage(path: Path) -> None:
    """Overwrite the file's header (SQLite's first page) with something else, and drop its
    write-ahead log (which may hold a good copy of that page): a bad copy of the file."""
    with path.open("r+b") as f:
        f.write(b"this is not what was here" * 160)
    for log in (path.with_name(f"{path.name}-wal"), path.with_name(f"{path.name}-shm")):
        log.unlink(missing_ok=True)


@pytest.mark.parametrize("name", ["openlam.db", "dbos.sqlite"])
def test_a_damaged_database_file_is_named_with_its_fix(workspace: Path, name: str):
    code, said = run(workspace, "run", "write 'one' to one.md")
    assert code == 0, said
    path = workspace / ".openlam" / name
    damage(path)

    for args in (("run", "write 'two' to two.md"), ("runs", "list")):
        code, said = run(workspace, *args)
        if args[0] == "runs" and name == "dbos.sqlite":
            assert code == 0, said  # listing runs does not need DBOS's own file
            continue
        assert code == 2, said
        assert f"the database file {path} is damaged (file is not a database)" in said
        assert "fix: restore it from a backup; or, to start afresh, move it aside" in said
        assert "Traceback" not in said and "internal error" not in said
    assert not (workspace / "two.md").exists()

    aside = workspace / "aside"
    aside.mkdir()
    for moved in path.parent.glob(f"{name}*"):  # the file, its -wal and -shm: as the fix says
        moved.rename(aside / moved.name)
    code, said = run(workspace, "run", "write 'two' to two.md")
    assert code == 0, said
    assert (workspace / "two.md").read_text() == "two"
