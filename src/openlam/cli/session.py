"""What ``openlam run`` does, separated from argument parsing."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

import typer

from openlam.cli.console import console as make_console
from openlam.cli.console import esc
from openlam.cli.report import Progress, print_outcome

INTERRUPTED_EXIT = 130


async def run_goal(
    goal: str,
    *,
    model: str | None,
    json_output: bool,
    max_steps: int | None,
    workspace: Path | None,
    agent: str | None = None,
    department: str | None = None,
    route: bool = False,
    learn: bool = True,
) -> int:
    from openlam.workforce import Workforce, check_goal, new_run_id

    goal = check_goal(goal)
    _stop_on_sigterm()
    console = make_console(stderr=json_output)
    run_id = new_run_id()
    async with Workforce(workspace, model=model) as wf:
        pending = wf.interrupted_runs()
        if pending:
            console.print(
                f"[yellow]Resuming {len(pending)} interrupted run(s)[/]: " + esc(", ".join(pending))
            )
        try:
            # The same choice of agent as Workforce.run: --agent, --department, --route
            # (the chief of staff), else the general operator.
            request = await wf.prepare(
                goal,
                max_steps=max_steps,
                agent=agent,
                department=department,
                route=route,
                run_id=run_id,
                learn=learn,
            )
            for warning in request.routing.warnings:
                console.print(f"[yellow]warning[/]: {esc(warning)}")
            with Progress(console) as progress:
                outcome = await wf.submit_and_wait(request, None if json_output else progress)
            for adopted in [*pending, *await wf.adopted_runs({run_id, *pending})]:
                status = await wf.finish_adopted(adopted)
                console.print(f"Resumed run {esc(adopted)}: [bold]{esc(status)}[/]")
        except asyncio.CancelledError:  # Ctrl-C: the run is saved; it resumes later
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()  # handled: the clean-up's own awaits and timeouts must work
            await _interrupted(wf, run_id)
            raise typer.Exit(INTERRUPTED_EXIT) from None
    if json_output:
        sys.stdout.write(outcome.model_dump_json(indent=2) + "\n")
    else:
        print_outcome(console, outcome)
    return outcome.exit_code


def _stop_on_sigterm() -> None:
    """SIGTERM (a service manager stopping us) stops the run like Ctrl-C: saved, resumable."""
    import signal

    task = asyncio.current_task()
    if task is not None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)


async def _interrupted(wf, run_id: str) -> None:
    """Stop quietly: mark what this process was running as interrupted and say, in one
    line, how it continues."""
    from dbos import DBOS

    logging.getLogger("dbos").setLevel(logging.CRITICAL)
    unfinished = [
        w.workflow_id
        for w in await DBOS.list_workflows_async(
            status="PENDING",
            executor_id=wf.runtime.executor_id,
            load_input=False,
            load_output=False,
        )
    ]
    wf.runtime.store.mark_interrupted(unfinished or [run_id])
    current = asyncio.current_task()
    others = [t for t in asyncio.all_tasks() if t is not current]
    for task in others:
        task.cancel()
    await asyncio.gather(*others, return_exceptions=True)
    from openlam.cli.main import set_interrupted_hint

    set_interrupted_hint(
        f"run {run_id} is saved and resumes with `openlam runs resume "
        f"{run_id}` (or on the next `openlam run`)"
    )
