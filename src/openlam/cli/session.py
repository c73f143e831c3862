"""What ``openlam run`` does, separated from argument parsing."""

from __future__ import annotations

import sys
from pathlib import Path

from rich.console import Console

from openlam.cli.report import Progress, print_outcome


async def run_goal(goal: str, *, model: str | None, json_output: bool, max_steps: int | None,
                   workspace: Path | None, agent: str | None = None,
                   department: str | None = None) -> int:
    from openlam.workforce import Workforce

    console = Console(stderr=json_output, highlight=False)
    async with Workforce(workspace, model=model) as wf:
        pending = wf.interrupted_runs()
        if pending:
            console.print(f"[yellow]Resuming {len(pending)} interrupted run(s)[/]: "
                          + ", ".join(pending))
        # Without --agent the chief of staff routes the goal through the organisation.
        outcome = await wf.run(goal, max_steps=max_steps, agent=agent, department=department,
                               route=True, on_event=None if json_output else Progress(console))
        for run_id in pending:
            resumed = await wf.wait(run_id)
            console.print(f"Resumed run {run_id}: [bold]{resumed.status.value}[/]")
    if json_output:
        sys.stdout.write(outcome.model_dump_json(indent=2) + "\n")
    else:
        print_outcome(console, outcome)
    return outcome.exit_code

