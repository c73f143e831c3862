"""``openlam run "goal"``: plan, act, verify and report, with live progress."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def install(app: typer.Typer) -> None:
    app.command("run")(run)


def run(
    goal: Annotated[str, typer.Argument(help="What to get done, in plain language.")],
    model: Annotated[
        str | None,
        typer.Option(help="PROVIDER:NAME, e.g. ollama:qwen3, openai:gpt-4.1-mini, or offline."),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the outcome as JSON.")] = False,
    max_steps: Annotated[
        int | None, typer.Option(min=1, help="Most steps the run may take.")
    ] = None,
    workspace: Annotated[
        Path | None,
        typer.Option(help="Directory for files and state (default: current directory)."),
    ] = None,
    agent: Annotated[str | None, typer.Option(help="Agent id to run the goal.")] = None,
    department: Annotated[str | None, typer.Option(help="Department to route the goal to.")] = None,
    route: Annotated[
        bool,
        typer.Option(
            "--route",
            help="Let the chief of staff pick the agent across the organisation "
            "(asks the model when one is connected). Default: the general "
            "operator runs the goal, as Workforce.run does.",
        ),
    ] = False,
    no_learn: Annotated[
        bool,
        typer.Option(
            "--no-learn", help="Neither replay learned playbooks nor learn from this run."
        ),
    ] = False,
) -> None:
    """Run a goal to a verified outcome. Exit code: 0 completed, 3 partial, 4 blocked, 1 failed."""
    import asyncio

    from openlam.cli.session import run_goal

    try:
        code = asyncio.run(
            run_goal(
                goal,
                model=model,
                json_output=json_output,
                max_steps=max_steps,
                workspace=workspace,
                agent=agent,
                department=department,
                route=route,
                learn=not no_learn,
            )
        )
    except KeyboardInterrupt:  # Ctrl-C outside the run's own handling: still 130, not
        raise typer.Exit(130) from None  # click's "Aborted!" and exit code 1
    raise typer.Exit(code)
