"""``openlam runs list|show|resume``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

runs_app = typer.Typer(help="Inspect and resume runs.", no_args_is_help=True)
Workspace = Annotated[Path | None, typer.Option(help="Workspace directory (default: cwd).")]


def install(app: typer.Typer) -> None:
    app.add_typer(runs_app, name="runs")


def _store(workspace: Path | None):
    from openlam.config import load_settings
    from openlam.memory.store import Store

    return Store(load_settings(workspace).app_database_url)


@runs_app.command("list")
def list_runs(
    workspace: Workspace = None,
    status: Annotated[str | None, typer.Option(help="Only runs with this status.")] = None,
    limit: Annotated[int, typer.Option(min=1)] = 20,
) -> None:
    """The most recent runs, newest first."""
    import datetime

    from openlam.cli.console import Column, print_table
    from openlam.cli.console import console as make_console
    from openlam.cli.report import short, status_style

    rows = _store(workspace).list_runs(limit=limit, status=status)
    console = make_console()
    if not rows:
        console.print('No runs yet. Start one with: openlam run "your goal"')
        return
    print_table(
        console,
        [Column("run", key=True), "started", Column("status", style=status_style), "agent", "goal"],
        (
            (
                r["id"],
                datetime.datetime.fromtimestamp(r["created_at"]).strftime("%Y-%m-%d %H:%M:%S"),
                r["status"],
                r["agent"],
                short(r["goal"], 60),
            )
            for r in rows
        ),
    )


@runs_app.command("show")
def show(
    run_id: Annotated[str, typer.Argument(help="Run id (a unique prefix is enough).")],
    workspace: Workspace = None,
    json_output: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """A run's steps, results, deliverables, gaps and delegation tree."""
    import json

    from openlam.cli.console import console as make_console
    from openlam.cli.console import esc
    from openlam.cli.report import print_outcome, run_tree
    from openlam.errors import UserError
    from openlam.loop.state import Outcome

    store = _store(workspace)
    run = store.get_run(run_id)
    if run is None:
        raise UserError(
            f"no run {run_id!r} in this workspace", "list runs with `openlam runs list`"
        )
    if json_output:
        typer.echo(json.dumps(run, indent=2, default=str))
        return
    console = make_console()
    if run.get("children"):
        console.print(run_tree(run, store.get_run))
    if run["outcome"]:
        print_outcome(console, Outcome.model_validate(run["outcome"]))
    else:
        console.print(f"Run {esc(run['id'])} is {esc(run['status'])}: {esc(run['goal'])}")
        if run.get("summary"):
            console.print(esc(run["summary"]))
        for s in run["steps"]:
            console.print(
                f"  {esc(s['step_id'])} {esc(s['action'])} {esc(s['status'])} "
                f"{esc(s['error'] or '')}"
            )
        if run["status"] in ("running", "interrupted"):
            console.print(
                "Interrupted runs resume on the next `openlam run`, or now with "
                f"`openlam runs resume {esc(run['id'])}`."
            )


@runs_app.command("resume")
def resume(
    run_id: Annotated[str, typer.Argument(help="Run id.")],
    workspace: Workspace = None,
    json_output: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Finish an interrupted run from its last finished step (no action is repeated)."""
    import asyncio
    import sys

    from openlam.cli.console import console as make_console
    from openlam.cli.report import print_outcome
    from openlam.workforce import Workforce

    async def go():
        async with Workforce(workspace) as wf:
            stored = wf.runtime.store.get_run(run_id)
            return await wf.resume(stored["id"] if stored else run_id)

    outcome = asyncio.run(go())
    if json_output:
        sys.stdout.write(outcome.model_dump_json(indent=2) + "\n")
    else:
        print_outcome(make_console(), outcome)
    raise typer.Exit(outcome.exit_code)


@runs_app.command("cancel")
def cancel(
    run_id: Annotated[str, typer.Argument(help="Run id (a unique prefix is enough).")],
    workspace: Workspace = None,
    reason: Annotated[str, typer.Option(help="Why (kept with the run).")] = "cancelled",
) -> None:
    """Stop a run and its delegated children: no further step starts; it ends cancelled."""
    from openlam.config import load_settings
    from openlam.governance.approvals import current_principal
    from openlam.runtime import admin

    settings = load_settings(workspace)
    typer.echo(
        admin.cancel(settings, _store(workspace), run_id, by=current_principal(), reason=reason)
    )


@runs_app.command("answer")
def answer(
    run_id: Annotated[str, typer.Argument(help="Run id (a unique prefix is enough).")],
    step: Annotated[str, typer.Argument(help="The asking step's id.")],
    text: Annotated[str, typer.Argument(help="Your answer.")],
    workspace: Workspace = None,
    principal: Annotated[str | None, typer.Option("--as", help="Who answers.")] = None,
) -> None:
    """Answer a question a run asked (ask_human / human.ask); the run continues."""
    from openlam.config import load_settings
    from openlam.governance.approvals import Roles, acting_principal
    from openlam.runtime.human import answer_question

    settings = load_settings(workspace)
    who = acting_principal(Roles.from_settings(settings), principal)  # --as needs admin
    answered = answer_question(settings, run_id, step, text, who)
    typer.echo(f"Answered {answered} step {step}; the run continues.")
