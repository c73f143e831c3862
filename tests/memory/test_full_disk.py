"""A disk that fills up under a workspace: the command says so and what to do — no
traceback, no "this is a bug" — and once there is room again the run that was cut off
finishes, its finished steps not repeated."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import sqlalchemy as sa

from openlam.errors import UserError, storage_trouble
from tests.procs import openlam


def test_a_full_database_is_named_as_a_full_disk(tmp_path: Path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'small.db'}")
    with engine.begin() as conn:
        conn.exec_driver_sql("PRAGMA max_page_count = 8")  # what SQLite says on a full disk
        conn.exec_driver_sql("CREATE TABLE t (x TEXT)")
    with pytest.raises(sa.exc.OperationalError) as full, engine.begin() as conn:
        conn.exec_driver_sql("PRAGMA max_page_count = 8")
        for _ in range(100):
            conn.exec_driver_sql("INSERT INTO t VALUES (?)", ("x" * 4000,))
    trouble = storage_trouble(full.value)
    assert isinstance(trouble, UserError)
    assert str(trouble).startswith("a disk is full: database or disk is full")
    assert "fix: free some space on the disk that holds the workspace" in str(trouble)
    assert storage_trouble(ValueError("something else")) is None


@pytest.fixture
def small_disk(tmp_path: Path):
    """A 1 MB file system of its own (tmpfs; needs the right to mount, as root has here)."""
    where = tmp_path / "small"
    where.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1M", "tmpfs", str(where)], capture_output=True
    )
    if mounted.returncode:
        pytest.skip(f"cannot mount a small file system here: {mounted.stderr.decode()[:200]}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def test_a_run_on_a_full_disk_says_so_and_finishes_once_there_is_room(small_disk: Path):
    big = "x" * 100_000
    said = ""
    for i in range(12):  # until the databases cannot grow (a step may fail on it first)
        proc = openlam(small_disk, "run", f"write '{big}' to f{i}.md")
        out, err = proc.communicate(timeout=120)
        said = out + err
        if proc.returncode == 2:
            break
    assert proc.returncode == 2, said
    assert "error: a disk is full: database or disk is full" in said
    assert "fix: free some space on the disk that holds the workspace" in said
    assert "Traceback" not in said and "this is a bug" not in said

    subprocess.run(["mount", "-o", "remount,size=50M", str(small_disk)], check=True)
    proc = openlam(small_disk, "run", "write 'room again' to after.md")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, out + err
    listed = openlam(small_disk, "runs", "list", "--status", "running")
    out, err = listed.communicate(timeout=60)
    assert listed.returncode == 0, err
    assert "run-" not in out, out  # the run cut off was finished by recovery
