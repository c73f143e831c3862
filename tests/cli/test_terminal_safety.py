"""Text a run did not write itself — a goal from a webhook, a page a tool read, a
model's plan — can carry what a terminal acts on instead of showing: escape sequences
that clear the screen, retitle the window or write to the clipboard (OSC 52), a carriage
return that overwrites the line, a bidirectional override that reverses what follows.
The CLI prints every such character as a visible escape, through every path: the run's
report, the runs list and run view, error messages and log lines, on a terminal or off."""

from __future__ import annotations

import logging
from pathlib import Path

from openlam.cli.console import PrintableFormatter, printable
from tests.procs import on_a_terminal, openlam

CLIPBOARD = "\x1b]52;c;cGF3bmVk\x07"  # OSC 52: put "pawned" on the clipboard
HOSTILE = f"ok {CLIPBOARD} \x1b[2J\x1b[H \rfake \u202eevil \x9b31m"
ACTING = ("\x1b]", "\x1b[2J", "\x1b[H", "\x07", "\r", "\u202e", "\x9b")


def assert_shown_not_acted_on(text: str) -> None:
    for sequence in ACTING:
        assert sequence not in text, repr(sequence)
    # shown, escaped, so the user sees it (in a step's JSON output as JSON escapes it)
    assert "\\x1b]52;c;cGF3bmVk\\x07" in text or "\\u001b]52;c;cGF3bmVk\\u0007" in text


def test_printable_escapes_what_a_terminal_acts_on_and_keeps_the_rest():
    assert printable("a\tb\nc [bold]é ✓") == "a\tb\nc [bold]é ✓"
    assert printable(HOSTILE) == (
        "ok \\x1b]52;c;cGF3bmVk\\x07 \\x1b[2J\\x1b[H \\x0dfake \\u202eevil \\x9b31m"
    )
    record = logging.LogRecord("openlam", logging.WARNING, "", 0, "tool said %s", (HOSTILE,), None)
    assert_shown_not_acted_on(PrintableFormatter("%(message)s").format(record))


def test_a_hostile_goal_and_tool_output_are_shown_escaped_off_a_terminal(workspace: Path):
    done = openlam(workspace, "run", f"write '{HOSTILE}' to notes.md")
    out, err = done.communicate(timeout=120)
    assert done.returncode == 0, out + err
    assert (workspace / "notes.md").read_bytes().decode() == HOSTILE  # the work itself is untouched
    assert_shown_not_acted_on(out + err)
    run_id = out.split(", run ", 1)[1].split(")", 1)[0]
    for args in (("runs", "list"), ("runs", "show", run_id)):
        shown = openlam(workspace, *args)
        out, err = shown.communicate(timeout=60)
        assert shown.returncode == 0, err
        assert_shown_not_acted_on(out + err)


def test_on_a_terminal_only_the_clis_own_styles_reach_it(workspace: Path):
    code, raw = on_a_terminal(workspace, 60, "run", f"write '{HOSTILE}' to notes.md")
    assert code == 0, raw
    text = raw.replace("\r\n", "\n")  # the terminal's own line ends
    assert_shown_not_acted_on(text)
    code, raw = on_a_terminal(workspace, 40, "runs", "list")
    assert code == 0, raw
    assert_shown_not_acted_on(raw.replace("\r\n", "\n"))


def test_an_error_quoting_hostile_input_is_escaped(workspace: Path):
    done = openlam(workspace, "runs", "show", f"run-{CLIPBOARD}")
    out, err = done.communicate(timeout=60)
    assert done.returncode == 2
    assert "error: no run 'run-\\x1b]52;c;cGF3bmVk\\x07'" in err
    assert "\x1b" not in out + err and "\x07" not in out + err
