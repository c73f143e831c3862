"""The CLI's tables: whatever a cell holds is printed as text (a goal, a policy's reason or
a tool's error may contain rich markup such as ``[/]``), ids are never cut, and a terminal
too narrow for the columns gets one short record per row instead of squeezed columns."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console
from typer.testing import CliRunner

from openlam.cli.console import Column, print_table
from openlam.cli.console import console as make_console
from openlam.cli.report import status_style
from openlam.config import load_settings
from openlam.governance.approvals import ApprovalStore, Roles

RUN = "run-a9be4d86de0c"
HOSTILE = "fetch https://example.org/a [/] [bold]loud[/bold] [search]"
COLUMNS = [Column("run", key=True), "started", Column("status", style=status_style), "agent"]
ROW = (RUN, "2026-12-06 02:42:01", "queued", "operator", HOSTILE)


def render(width: int) -> str:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, color_system=None, width=width)
    print_table(console, [*COLUMNS, "goal"], [ROW])
    return out.getvalue()


def test_a_wide_terminal_gets_a_table_with_every_cell_as_written():
    lines = render(160).splitlines()
    assert lines[0].split() == ["run", "started", "status", "agent", "goal"]
    assert lines[1].startswith(RUN) and lines[1].rstrip().endswith(HOSTILE)


def test_a_narrow_terminal_gets_records_with_the_id_whole():
    text = render(40)
    lines = text.splitlines()
    assert lines[0].strip() == RUN  # the id alone on its line, never cut to "run-a…"
    assert "…" not in text
    joined = " ".join(text.split())  # undo the terminal's wrapping
    assert "status: queued" in joined and "agent: operator" in joined
    assert f"goal: {HOSTILE}" in joined


def test_off_a_terminal_the_table_is_never_squeezed(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "40")
    print_table(make_console(), [*COLUMNS, "goal"], [ROW])  # stdout is a pipe here
    lines = capsys.readouterr().out.splitlines()  # as wide as its content, whatever COLUMNS
    assert lines[1].startswith(RUN) and lines[1].rstrip().endswith(HOSTILE)


def test_approvals_list_and_show_print_hostile_text_as_it_is(workspace: Path) -> None:
    from openlam.cli.main import _install, app

    store = ApprovalStore(load_settings(workspace).app_database_url, roles=Roles({"*": ["dana"]}))
    asked = store.request(
        RUN,
        "s1",
        "files.write",
        {"path": "[/]notes.md", "content": "[red]x"},
        expires_in=600,
        goal=HOSTILE,
        reason="writes need sign-off [/]",
        rule_id="ask[/]",
    )
    _install()
    runner = CliRunner()
    listed = runner.invoke(app, ["approvals", "list", "--workspace", str(workspace)])
    assert listed.exit_code == 0, listed.output
    assert asked.id in listed.output and "writes need sign-off [/]" in listed.output
    shown = runner.invoke(app, ["approvals", "show", asked.id, "--workspace", str(workspace)])
    assert shown.exit_code == 0, shown.output
    assert f"goal: {HOSTILE}" in shown.output
    assert "why asked: writes need sign-off [/] (rule ask[/])" in shown.output
    assert '"path": "[/]notes.md"' in shown.output
