"""``openlam worker``, ``openlam submit`` and ``openlam status``: the always-on workforce."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from openlam.config import MAX_PRIORITY

Workspace = Annotated[Path | None, typer.Option(help="Workspace directory (default: cwd).")]


def install(app: typer.Typer) -> None:
    app.command("worker")(worker)
    app.command("submit")(submit)
    app.command("status")(status)


def worker(
    workspace: Workspace = None,
    queues: Annotated[
        str | None, typer.Option(help="Comma-separated queues to take runs from (default: all).")
    ] = None,
    concurrency: Annotated[
        int | None,
        typer.Option(min=1, help="Runs at once per worker (sets the queues' worker limit)."),
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="Serve GET /health and POST /hooks/NAME on this port.")
    ] = None,
    host: Annotated[str, typer.Option(help="Address for --port.")] = "127.0.0.1",
) -> None:
    """Run queued goals until stopped (SIGTERM or Ctrl-C drain it gracefully)."""
    import asyncio

    from openlam.cli.console import console, esc
    from openlam.config import load_settings
    from openlam.runtime.worker import Worker

    out = console()
    names = [q.strip() for q in queues.split(",") if q.strip()] if queues else None
    settings = load_settings(workspace)
    asyncio.run(
        Worker(
            settings,
            queues=names,
            concurrency=concurrency,
            port=port,
            host=host,
            say=lambda text: out.print(esc(text)),
        ).run()
    )


def submit(
    goal: Annotated[str, typer.Argument(help="What to get done.")],
    workspace: Workspace = None,
    agent: Annotated[str | None, typer.Option(help="Agent id to run the goal.")] = None,
    department: Annotated[str | None, typer.Option(help="Department to route to.")] = None,
    priority: Annotated[
        int | None,
        typer.Option(
            min=1, max=MAX_PRIORITY, help="1 is the most urgent; unset runs after prioritised ones."
        ),
    ] = None,
    deadline: Annotated[
        str | None,
        typer.Option(help='No step starts after this long, e.g. "10m" (the run ends cancelled).'),
    ] = None,
    model: Annotated[str | None, typer.Option(help="PROVIDER:NAME.")] = None,
    wait: Annotated[bool, typer.Option(help="Wait for the outcome.")] = False,
    json_output: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Queue a goal for the workers and print its run id (--wait for the outcome)."""
    import asyncio
    import json
    import sys

    from openlam.cli.console import console, esc
    from openlam.cli.report import print_outcome
    from openlam.config import load_settings
    from openlam.workforce import Workforce, check_goal

    check_goal(goal)
    wf = Workforce(settings=load_settings(workspace), model=model)
    request = asyncio.run(
        wf.submit(goal, agent=agent, department=department, priority=priority, deadline=deadline)
    )
    out = console(stderr=json_output)
    agent_id = request.agent.id
    out.print(f"queued {esc(request.run_id)} for {esc(agent_id)}")
    if not _workers_alive(wf):
        out.print(
            "[yellow]no worker is running[/]: start one with `openlam worker` "
            "(the run waits in its queue until then)"
        )
    if not wait:
        if json_output:
            sys.stdout.write(json.dumps({"run_id": request.run_id, "agent": agent_id}) + "\n")
        return
    outcome = asyncio.run(_wait(wf, request.run_id))
    if json_output:
        sys.stdout.write(outcome.model_dump_json(indent=2) + "\n")
    else:
        print_outcome(out, outcome)
    raise typer.Exit(outcome.exit_code)


async def _wait(wf, run_id: str):
    from openlam.loop.state import Outcome
    from openlam.runtime import admin

    handle = await admin.client(wf.settings).retrieve_workflow_async(run_id)
    return Outcome.model_validate(await handle.get_result())


def _workers_alive(wf) -> bool:
    from openlam.runtime.executors import ALIVE, Executors

    executors = Executors(wf.store.engine)
    return any(
        e.kind in ("worker", "serve") and not executors.is_dead(e)
        for e in executors.list(states=(ALIVE,))
    )


def status(
    workspace: Workspace = None, json_output: Annotated[bool, typer.Option("--json")] = False
) -> None:
    """Processes alive, queue depths, runs by state, the oldest waiting approval."""
    import json

    from openlam.cli.console import console, esc
    from openlam.config import load_settings
    from openlam.memory.store import Store
    from openlam.runtime import admin

    settings = load_settings(workspace)
    info = admin.status(settings, Store(settings.app_database_url))
    if json_output:
        typer.echo(json.dumps(info, indent=2))
        return
    out = console()
    procs = info["processes"]
    out.print(f"[bold]Processes[/]: {len(procs)} alive")
    for p in procs:
        out.print(
            f"  {esc(p['kind'])} {esc(p['id'])} (pid {p['pid']} on {esc(p['host'])}, "
            f"seen {p['seen_seconds_ago']} s ago)"
        )
    queues = ", ".join(f"{esc(name)} {n}" for name, n in sorted(info["queues"].items()))
    out.print(f"[bold]Queued[/]: {queues or 'nothing'}")
    runs = ", ".join(f"{esc(state)} {n}" for state, n in sorted(info["runs"].items()))
    out.print(f"[bold]Runs[/]: {runs or 'none yet'}")
    oldest = info["oldest_approval"]
    if oldest:
        out.print(
            f"[bold]Oldest waiting approval[/]: {esc(oldest['id'])} ({esc(oldest['action'])}"
            f" in run {esc(oldest['run_id'])}), waiting {oldest['waiting_seconds']} s"
        )
    if not any(p["kind"] in ("worker", "serve") for p in procs) and info["queues"]:
        out.print("[yellow]runs are queued but no worker is running[/]: start `openlam worker`")
