"""Every goal shape the README promises offline completes, end to end, with no model:
plans made by the offline planner are validated like a model's (a reference implies the
dependency, so the write waits for the fetch)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.procs import allow_local_network, openlam


def run(workspace: Path, goal: str) -> str:
    proc = openlam(workspace, "run", goal, "--model", "offline")
    out, err = proc.communicate(timeout=90)
    assert proc.returncode == 0, f"{goal!r} exited {proc.returncode}:\n{out}\n{err}"
    assert "COMPLETED" in out
    return out


@pytest.mark.timeout(240)
def test_the_documented_offline_goals_complete(workspace: Path, site) -> None:
    allow_local_network(workspace)
    run(workspace, f"save the page at {site.url}/page.html as notes.md")
    assert "Acme sells anvils" in (workspace / "notes.md").read_text()
    run(workspace, "copy notes.md to backup/notes.md")
    assert (workspace / "backup" / "notes.md").read_text() == (workspace / "notes.md").read_text()
    picture = bytes(range(256)) * 20  # not text: a read and a write would mangle it
    (workspace / "logo.png").write_bytes(picture)
    run(workspace, "copy logo.png to backup/logo.png")
    assert (workspace / "backup" / "logo.png").read_bytes() == picture
    run(workspace, "write 'Hello from OpenLAM' to hello.md")
    assert (workspace / "hello.md").read_text() == "Hello from OpenLAM"
    run(workspace, f"fetch {site.url}/data.json")
    assert site.hits("/data.json") == 1


def test_the_readme_lists_exactly_these_shapes() -> None:
    from openlam.models.offline import TEMPLATES

    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    for shape in (
        "save the page at URL as FILE",
        "write 'TEXT' to FILE",
        "copy FILE to FILE",
        "fetch URL",
    ):
        assert shape in readme
    assert len(TEMPLATES) == 4
