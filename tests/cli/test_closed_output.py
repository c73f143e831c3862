"""`openlam run … | head -1`: the reader goes away after the first line. The run goes on
to its end, quietly: rich's console raised SystemExit inside the event loop, which left
the run interrupted half done, exited 1 and printed asyncio's traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from openlam.config import load_settings
from openlam.memory.store import Store
from tests.procs import allow_local_network, openlam


@pytest.mark.timeout(120)
def test_a_run_whose_reader_went_away_finishes_quietly(workspace: Path, site) -> None:
    allow_local_network(workspace)
    # the page takes a second: the report is written after the reader has gone
    proc = openlam(workspace, "run", f"save the page at {site.url}/slow?s=1 as slow.md")
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline().startswith("Goal: save the page")
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=90) == 0, err
    assert err == ""
    assert (workspace / "slow.md").read_text() == "slow answer"
    (run,) = Store(load_settings(workspace).app_database_url).list_runs()
    assert run["status"] == "completed"
