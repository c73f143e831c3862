"""With no model, a goal nothing learned or shipped matches is declined with what the
workspace can do offline — its learned goal shapes and the shipped templates — through
the real command, off a terminal (COLUMNS=40: one line, nothing lost) and on a
40-column terminal (wrapped to it, nothing lost)."""

from __future__ import annotations

import re
from pathlib import Path

from tests import procs
from tests.fakes.model_servers import FakeOpenAI
from tests.learning.test_learn_cli import cli
from tests.procs import model_env, openlam

LEARNED = "record <text> in <file> for ticket <number>"
OTHER = "summarise the news about lamps"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")  # styles, cursor, title


def teach(workspace: Path) -> None:
    plan = {
        "steps": [
            {
                "id": "w",
                "action": "files.write",
                "args": {"path": "log.md", "content": "ticket 42: hello"},
            }
        ]
    }
    with FakeOpenAI([plan]) as server:
        done = openlam(
            workspace,
            "run",
            "record 'hello' in log.md for ticket 42",
            "--model",
            "openai:fake",
            env=model_env(server.url),
        )
        out, err = done.communicate(timeout=120)
    assert done.returncode == 0, out + err


def on_a_terminal(workspace: Path, columns: int, *args: str) -> tuple[int, str]:
    """The command's output on a pseudo-terminal ``columns`` wide, styles taken out."""
    code, raw = procs.on_a_terminal(workspace, columns, *args)
    return code, ANSI.sub("", raw).replace("\r\n", "\n")


def test_offline_a_goal_nothing_matches_lists_what_can_be_done(workspace: Path) -> None:
    teach(workspace)
    code, out, err = cli(workspace, "run", OTHER, "--model", "offline")
    assert code == 4, out + err  # blocked: a model is missing
    [line] = [line for line in out.splitlines() if "I can do these offline:" in line]
    assert f'"{LEARNED}" (learned)' in line
    assert '"save the page at https://example.org as notes.md"' in line  # a shipped one
    assert "; for anything else, connect a model: start Ollama" in line
    # a learned shape the goal does match is still done offline
    code, out, err = cli(
        workspace, "run", "record 'bye' in b.md for ticket 7", "--model", "offline"
    )
    assert code == 0 and (workspace / "b.md").read_text() == "ticket 7: bye", out + err

    proc = openlam(workspace, "run", OTHER, "--model", "offline", env={"COLUMNS": "40"})
    narrow, _ = proc.communicate(timeout=120)
    assert [line for line in narrow.splitlines() if "I can do these offline:" in line] == [
        line
    ]  # off a terminal nothing wraps, whatever the width

    code, shown = on_a_terminal(workspace, 40, "run", OTHER, "--model", "offline")
    assert code == 4, shown
    lines = shown.splitlines()
    assert max(len(line) for line in lines) <= 40, lines
    flowing = " ".join(" ".join(lines).split())
    assert "I can do these offline:" in flowing and LEARNED in flowing
    assert "for anything else, connect a model" in flowing
