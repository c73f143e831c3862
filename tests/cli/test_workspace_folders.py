"""A workspace's folder may be named anything a file system allows: its databases stay in
its own .openlam/, never beside it, never shared with another workspace."""

from __future__ import annotations

from pathlib import Path

import pytest

from openlam.config import load_settings
from openlam.memory.engines import engine_for, release_engines
from tests.procs import openlam

NAMES = ["q?mode=ro#x", "100%25 done", "C# notes @home:1", "données ✓ (copy)"]


@pytest.mark.timeout(240)
def test_databases_stay_inside_oddly_named_workspaces(tmp_path: Path) -> None:
    for name in NAMES:
        workspace = tmp_path / name
        workspace.mkdir()
        proc = openlam(workspace, "run", f"write '{name}' to a.md", "--model", "offline")
        out, err = proc.communicate(timeout=90)
        assert proc.returncode == 0, out + err
        assert (workspace / "a.md").read_text() == name
        assert {"openlam.db", "dbos.sqlite"} <= {p.name for p in (workspace / ".openlam").iterdir()}
    # nothing was made beside the workspaces (the first one once landed in /…/q)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(NAMES)
    for name in NAMES:  # each workspace sees its own run only
        proc = openlam(tmp_path / name, "runs", "list")
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert out.count("completed") == 1 and f"write '{name}'" in out


def test_a_workspace_s_engines_are_released_by_folder(tmp_path: Path) -> None:
    workspace = tmp_path / "q?x=1 %41"
    workspace.mkdir()
    url = load_settings(workspace).app_database_url
    engine = engine_for(url)
    assert Path(str(engine.url.database)) == workspace / ".openlam" / "openlam.db"
    release_engines(workspace)
    assert engine_for(url) is not engine
    release_engines(workspace)
