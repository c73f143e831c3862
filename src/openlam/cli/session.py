"""What ``openlam run`` does, separated from argument parsing."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from rich.console import Console

from openlam.cli.report import Progress, print_outcome


async def run_goal(goal: str, *, model: str | None, json_output: bool, max_steps: int | None,
                   workspace: Path | None, agent: str | None = None,
                   department: str | None = None) -> int:
    from openlam.workforce import Workforce

    console = Console(stderr=json_output, highlight=False)
    wf = Workforce(workspace, model=model)
    await _open(wf)
    try:
        pending = wf.interrupted_runs()
        if pending:
            console.print(f"[yellow]Resuming {len(pending)} interrupted run(s)[/]: "
                          + ", ".join(pending))
        outcome = await wf.run(goal, max_steps=max_steps, agent=agent, department=department,
                               route=_org_installed(),
                               on_event=None if json_output else Progress(console))
        for run_id in pending:
            resumed = await wf.wait(run_id)
            console.print(f"Resumed run {run_id}: [bold]{resumed.status.value}[/]")
    finally:
        await _close(wf)
    if json_output:
        sys.stdout.write(outcome.model_dump_json(indent=2) + "\n")
    else:
        print_outcome(console, outcome)
    return outcome.exit_code


def _org_installed() -> bool:
    """`openlam run` routes through the chief of staff when the org catalog is present."""
    import importlib.util

    return importlib.util.find_spec("openlam.org.select") is not None


async def _open(wf: Any) -> None:
    import asyncio

    await asyncio.to_thread(wf.open)


async def _close(wf: Any) -> None:
    import asyncio

    from openlam.runtime.process import close_plugins

    await close_plugins()
    await asyncio.to_thread(wf.close)
