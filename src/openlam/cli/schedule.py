"""``openlam schedule`` and ``openlam trigger``: goals that start by themselves."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

Workspace = Annotated[Path | None, typer.Option(help="Workspace directory (default: cwd).")]
Agent = Annotated[str | None, typer.Option(help="Agent id to run the goal.")]
Department = Annotated[str | None, typer.Option(help="Department to route the goal to.")]
schedule_app = typer.Typer(help="Recurring goals (run by `openlam worker`).", no_args_is_help=True)
trigger_app = typer.Typer(
    help="Goals started by events: webhook, new email, dropped file.", no_args_is_help=True
)


def install(app: typer.Typer) -> None:
    app.add_typer(schedule_app, name="schedule")
    app.add_typer(trigger_app, name="trigger")


@schedule_app.command("add")
def schedule_add(
    when: Annotated[
        str, typer.Argument(help='"every weekday at 9:00", "every 15 minutes", or cron.')
    ],
    goal: Annotated[str, typer.Argument(help="What to get done each time.")],
    workspace: Workspace = None,
    agent: Agent = None,
    department: Department = None,
    name: Annotated[str | None, typer.Option(help="A short name.")] = None,
    catch_up: Annotated[
        bool, typer.Option(help="Run missed firings when a worker is back (default: skip them).")
    ] = False,
    timezone: Annotated[
        str | None, typer.Option(help="IANA zone, e.g. Europe/Berlin (default: this machine's).")
    ] = None,
    deadline: Annotated[
        str | None, typer.Option(help='Each run stops starting steps after this long, e.g. "30m".')
    ] = None,
) -> None:
    """Run a goal on a schedule."""
    from openlam.cli.console import console, esc
    from openlam.config import load_settings
    from openlam.runtime import schedules

    added = schedules.add(
        load_settings(workspace),
        when,
        goal,
        name=name,
        agent=agent,
        department=department,
        catch_up=catch_up,
        timezone=timezone,
        deadline=deadline,
    )
    console().print(
        f"schedule {esc(added['name'])}: {esc(goal)} — cron {esc(added['cron'])}"
        f" ({esc(added['timezone'] or 'UTC')}); a running `openlam worker` fires it"
    )


@schedule_app.command("list")
def schedule_list(workspace: Workspace = None) -> None:
    """The schedules, with when each last fired."""
    from openlam.cli.console import console, esc
    from openlam.config import load_settings
    from openlam.runtime import schedules

    out = console()
    found = schedules.list_all(load_settings(workspace))
    if not found:
        out.print('No schedules. Add one: openlam schedule add "every weekday at 9:00" "goal"')
    for s in found:
        out.print(
            f"{esc(s['name'])}: {esc(s.get('when', s['cron']))} → {esc(s.get('goal', ''))}"
            f"  [dim](cron {esc(s['cron'])}, last fired {esc(s['last_fired_at'] or 'never')}"
            f"{', catches up' if s['catch_up'] else ''})[/]"
        )


@schedule_app.command("rm")
def schedule_rm(
    name: Annotated[str, typer.Argument(help="The schedule's name.")], workspace: Workspace = None
) -> None:
    """Remove a schedule (runs it started are kept)."""
    from openlam.config import load_settings
    from openlam.runtime import schedules

    schedules.remove(load_settings(workspace), name)
    typer.echo(f"removed schedule {name}")


@trigger_app.command("add")
def trigger_add(
    kind: Annotated[str, typer.Argument(help="webhook, imap or folder.")],
    name: Annotated[str, typer.Argument(help="A short name (used in URLs).")],
    goal: Annotated[
        str,
        typer.Argument(help="The goal; the event's content is handed to it as untrusted context."),
    ],
    workspace: Workspace = None,
    agent: Agent = None,
    department: Department = None,
    path: Annotated[str, typer.Option(help="folder: the folder to watch.")] = "inbox",
    mailbox: Annotated[str, typer.Option(help="imap: the mailbox to watch.")] = "INBOX",
    poll: Annotated[float, typer.Option(help="Seconds between polls.")] = 10.0,
    secret: Annotated[
        str | None, typer.Option(help="webhook: the shared secret (default: a new random one).")
    ] = None,
) -> None:
    """Start a goal whenever an event arrives."""
    from openlam.cli.console import console, esc
    from openlam.config import load_settings
    from openlam.memory.store import Store
    from openlam.runtime.triggers import Triggers, new_trigger

    settings = load_settings(workspace)  # a missing workspace is the first thing to say
    trigger = new_trigger(
        kind,
        name,
        goal,
        agent=agent,
        department=department,
        path=path,
        mailbox=mailbox,
        poll=poll,
        secret=secret,
    )
    token = Triggers(Store(settings.app_database_url).engine).add(trigger)
    out = console()
    out.print(f"trigger {esc(name)} ({esc(kind)}): {esc(goal)}")
    if kind == "webhook":
        out.print(
            f"POST /hooks/{esc(name)} on a worker's --port (or the server) with header "
            f"X-OpenLAM-Token: {esc(token)}  — keep this secret; it is shown only now"
        )
    else:
        out.print(
            "a running `openlam worker` polls it every "
            f"{poll:g} s; each new {'file' if kind == 'folder' else 'email'} starts a run"
        )


@trigger_app.command("list")
def trigger_list(workspace: Workspace = None) -> None:
    """The triggers."""
    import json

    from openlam.cli.console import console, esc
    from openlam.config import load_settings
    from openlam.memory.store import Store
    from openlam.runtime.triggers import Triggers, describe

    out = console()
    settings = load_settings(workspace)
    found = Triggers(Store(settings.app_database_url).engine).list()
    if not found:
        out.print('No triggers. Add one: openlam trigger add folder inbox "summarise the file"')
    for t in found:
        info = describe(t)
        out.print(
            f"{esc(t.name)} ({esc(t.kind)}): {esc(t.goal)}  "
            f"[dim]{esc(json.dumps(info['config']))}[/]"
        )


@trigger_app.command("rm")
def trigger_rm(
    name: Annotated[str, typer.Argument(help="The trigger's name.")], workspace: Workspace = None
) -> None:
    """Remove a trigger."""
    from openlam.config import load_settings
    from openlam.memory.store import Store
    from openlam.runtime.triggers import Triggers

    settings = load_settings(workspace)
    Triggers(Store(settings.app_database_url).engine).remove(name)
    typer.echo(f"removed trigger {name}")
