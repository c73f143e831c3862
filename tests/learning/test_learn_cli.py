"""``openlam learn`` and the switches, through the real command: a shipped offline
template completes, which teaches a playbook; --no-learn and [learning] enabled = false
teach nothing; forget removes it; a bad switch is a clear error."""

from __future__ import annotations

import json
from pathlib import Path

from tests.procs import openlam


def cli(workspace: Path, *args: str) -> tuple[int, str, str]:
    proc = openlam(workspace, *args)
    out, err = proc.communicate(timeout=120)
    return proc.returncode, out, err


def test_learn_commands_show_forget_and_switches(workspace: Path) -> None:
    code, out, err = cli(
        workspace, "run", "write 'hello' to a.md", "--model", "offline", "--no-learn"
    )
    assert code == 0, err
    assert "No playbooks yet" in cli(workspace, "learn", "playbooks")[1]

    code, out, err = cli(workspace, "run", "write 'hello' to a.md", "--model", "offline")
    assert code == 0, err
    code, out, err = cli(workspace, "learn", "playbooks", "--json")
    [pb] = json.loads(out)
    assert pb["params"] == {"p1": "text", "p2": "file"} and pb["successes"] == 1
    code, out, _ = cli(workspace, "run", "write 'bye' to b.md", "--model", "offline")
    assert code == 0 and "no model needed: the goal matches playbook " + pb["id"] in out
    assert (workspace / "b.md").read_text() == "bye"
    shown = cli(workspace, "learn", "show")[1]
    assert "Playbooks: 1 (0 demoted" in shown
    tools = cli(workspace, "learn", "tools")[1]
    assert "files.write" in tools and "100%" in tools
    exported = json.loads(cli(workspace, "learn", "export")[1])
    assert [p["id"] for p in exported["playbooks"]] == [pb["id"]]

    code, out, _ = cli(workspace, "learn", "forget", pb["id"][:6])
    assert code == 0 and f"forgot playbook {pb['id']}" in out
    code, _, err = cli(workspace, "learn", "forget", "pb-nothing")
    assert code == 2 and "no playbook or lesson 'pb-nothing'" in err

    (workspace / "openlam.toml").write_text("[learning]\nenabled = false\n")
    assert cli(workspace, "run", "write 'x' to c.md", "--model", "offline")[0] == 0
    assert "No playbooks yet" in cli(workspace, "learn", "playbooks")[1]
    (workspace / "openlam.toml").write_text('[learning]\nenabled = "no"\n')
    code, _, err = cli(workspace, "run", "write 'x' to c.md", "--model", "offline")
    assert code == 2 and "[learning] enabled must be true or false" in err
