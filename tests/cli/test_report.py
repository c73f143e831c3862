"""The CLI's printing: data is never markup, nothing wraps off a terminal whatever the
width, and a run that waits for its model says so (issue 8 §8, §9)."""

from __future__ import annotations

import io
import time
from typing import Any

import pytest
from rich.console import Console

from openlam.cli import report
from openlam.cli.console import RULE_WIDTH, console, esc
from openlam.cli.report import Progress, print_outcome, run_tree
from openlam.loop.state import Outcome

TRICKY = "check [/] the [bold]notes[/bold] under [search] in openlam.toml :smile: C:\\d\\[x]"


def _plain(width: int = 80) -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=width, highlight=False, emoji=False), out


def _events(goal: str) -> list[dict[str, Any]]:
    ids = {"run_id": "run-1", "root_id": "run-1"}
    child = {"run_id": "run-1-s3", "root_id": "run-1"}
    return [
        {
            "kind": "run.started",
            **ids,
            "goal": goal,
            "agent": "op[/]",
            "model": "m[x]",
            "routing": "because [search]",
        },
        {
            "kind": "plan",
            **ids,
            "version": 1,
            "steps": [
                {"id": "s1", "action": "files.write", "args": {"content": "[/] [bold]"}},
                {"id": "s2", "action": "files.read", "args": {}, "depends_on": ["s1"]},
            ],
        },
        {"kind": "step.started", **ids, "step": "s1", "action": "files.write"},
        {
            "kind": "step.finished",
            **ids,
            "step": "s1",
            "action": "files.write",
            "status": "failed",
            "error": "no such file [/]x.md under [search]",
        },
        {"kind": "replan", **ids, "reason": "s1 failed: [/]"},
        {
            "kind": "approval.requested",
            **ids,
            "step": "s2",
            "action": "a.b",
            "approval": "ap[1]",
            "reason": "rule [search] matched",
        },
        {
            "kind": "approval.decided",
            **ids,
            "step": "s2",
            "approval": "ap[1]",
            "status": "approved",
            "by": "[bold]eve",
        },
        {
            "kind": "question",
            **ids,
            "step": "s2",
            "question": "which [/]?",
            "answer_with": "openlam runs answer run-1 s2 '[x]'",
        },
        {"kind": "run.started", **child, "goal": "sub [/] goal", "agent": "kid[/]", "model": "m"},
        {
            "kind": "step.finished",
            **child,
            "step": "t1",
            "action": "x.y",
            "status": "failed",
            "error": "child [bold] error [/]",
        },
        {"kind": "run.finished", **child, "status": "failed", "summary": "[/]"},
        {"kind": "model.answered", **ids, "n": 2, "error": "HTTP 500 [/] [search]"},
    ]


def test_progress_prints_every_event_literally():
    con, out = _plain(width=500)
    progress = Progress(con)
    for event in _events(TRICKY):
        progress(event)
    text = out.getvalue()
    for literal in (
        TRICKY,
        "agent op[/]",
        "model m[x]",
        "because [search]",
        '"[/] [bold]"',
        "no such file [/]x.md under [search]",
        "s1 failed: [/]",
        "rule [search] matched",
        "edit ap[1]",
        "by [bold]eve",
        "which [/]?",
        "'[x]'",
        "kid[/]",
        "sub [/] goal",
        "child [bold] error [/]",
        "the model failed: HTTP 500 [/] [search]",
    ):
        assert literal in text, literal


def _outcome(goal: str) -> Outcome:
    return Outcome.model_validate(
        {
            "run_id": "run-1",
            "goal": goal,
            "agent": "op[/]",
            "status": "partial",
            "summary": "Partial: s2 failed [/] see [search] in openlam.toml",
            "routing": "chosen by [bold]rules",
            "steps": [
                {
                    "id": "s1",
                    "action": "files.read",
                    "status": "succeeded",
                    "output": {"text": "[/] [bold]out[/bold] [search]"},
                },
                {"id": "s2", "action": "http.get", "status": "failed", "error": "HTTP 500 [/]"},
            ],
            "deliverables": ["notes[1].md"],
            "gaps": [{"kind": "capability", "what": "crm.[x]", "why": "none under [search]"}],
            "answer": "The file says [/] [bold]out[/bold]",
        }
    )


def test_print_outcome_and_run_tree_print_data_literally():
    con, out = _plain(width=200)
    print_outcome(con, _outcome(TRICKY))
    run = {
        "id": "run-1",
        "status": "partial",
        "agent": "op[/]",
        "goal": "[/] goal [search]",
        "children": [{"id": "run-2"}],
    }
    child = {
        "id": "run-2",
        "status": "failed",
        "agent": "kid",
        "goal": "sub [bold]",
        "children": [],
    }
    con.print(run_tree(run, {"run-2": child}.get))
    text = out.getvalue()
    for literal in (
        "see [search] in openlam.toml",
        "chosen by [bold]rules",
        "HTTP 500 [/]",
        "[/] [bold]out[/bold] [search]",
        "notes[1].md",
        "crm.[x]",
        "none under [search]",
        "op[/]",
        "[/] goal [search]",
        "sub [bold]",
        "Answer: The file says [/] [bold]out[/bold]",
    ):
        assert literal in text, literal


def test_esc_keeps_backslashes_and_brackets():
    con, out = _plain(width=500)
    con.print(f"[red]{esc(TRICKY)}[/]")
    path = "C:\\dir\\"
    con.print(f"[red]{esc(path)}[/] ok")  # a trailing backslash before a tag
    assert out.getvalue().splitlines() == [TRICKY, "C:\\dir\\ ok"]


@pytest.mark.parametrize("columns", ["30", "200"])
def test_off_a_terminal_nothing_wraps_whatever_the_width(monkeypatch, capsys, columns):
    monkeypatch.setenv("COLUMNS", columns)
    con = console()
    assert not con.is_terminal
    long_line = "word " * 60 + "[search] end"
    con.print(esc(long_line))
    print_outcome(con, _outcome(long_line))
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == long_line  # one line, not wrapped at 30 (or 80)
    rule = next(line for line in printed if "PARTIAL" in line)
    assert len(rule) == RULE_WIDTH  # a modest rule, not one as wide as the console
    row = next(line for line in printed if line.startswith("s2"))
    assert "HTTP 500 [/]" in row and len(row.rstrip()) < 200  # the table fits its content


def test_waiting_for_the_model_off_a_terminal(monkeypatch):
    monkeypatch.setattr(report, "REMIND_EVERY", 0.05)
    con, out = _plain()
    with Progress(con) as progress:
        progress({"kind": "model.requested", "run_id": "run-1", "root_id": "run-1", "n": 1})
        assert "asking the model…" in out.getvalue()  # at once
        deadline = time.monotonic() + 10
        while "still waiting for the model (" not in out.getvalue():
            assert time.monotonic() < deadline, out.getvalue()
            time.sleep(0.02)
        progress({"kind": "model.answered", "run_id": "run-1", "root_id": "run-1", "n": 1})
        reminders = out.getvalue().count("still waiting")
        time.sleep(0.3)
        assert out.getvalue().count("still waiting") == reminders  # the answer stopped them


def test_waiting_for_the_model_on_a_terminal_shows_the_seconds():
    out = io.StringIO()
    con = Console(file=out, force_terminal=True, width=40, highlight=False)
    progress = Progress(con)
    progress({"kind": "model.requested", "run_id": "run-1", "root_id": "run-1", "n": 1})
    time.sleep(0.3)  # the live line redraws itself with the seconds elapsed
    progress(
        {"kind": "plan", "run_id": "run-1", "root_id": "run-1", "version": 1, "steps": []}
    )  # the next event ends the live line
    assert progress.waiting is None
    text = out.getvalue()
    assert "asking the model… 0 s" in text and "Plan v1" in text


def test_a_narrow_terminal_lists_the_steps_instead_of_squeezing_a_table():
    out = io.StringIO()
    con = Console(
        file=out, force_terminal=True, no_color=True, width=30, highlight=False, emoji=False
    )
    print_outcome(con, _outcome(TRICKY))
    text = " ".join(out.getvalue().split())  # undo the terminal's word wrapping
    assert "✗ s2 http.get failed: HTTP 500 [/]" in text
    assert '✓ s1 files.read succeeded: {"text": "[/] [bold]out[/bold] [search]"}' in text
