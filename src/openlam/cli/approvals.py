"""``openlam approvals list|show|approve|deny|edit``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

approvals_app = typer.Typer(help="Steps waiting for a person's decision.", no_args_is_help=True)
Workspace = Annotated[Path | None, typer.Option(help="Workspace directory (default: cwd).")]
As = Annotated[
    str | None,
    typer.Option(
        "--as", help="Decide as another principal (needs the admin role; default: the OS user)."
    ),
]
Comment = Annotated[str, typer.Option("--comment", "-m", help="Why (kept in the audit log).")]
Id = Annotated[str, typer.Argument(help="Approval id (a unique prefix is enough).")]


def install(app: typer.Typer) -> None:
    app.add_typer(approvals_app, name="approvals")


def _settings(workspace: Path | None) -> Any:
    from openlam.config import load_settings

    return load_settings(workspace)


def _print(approval: Any) -> None:
    import datetime
    import json

    from openlam.cli.console import console, esc

    def when(ts: float | None) -> str:
        return datetime.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S") if ts else "-"

    a = approval
    out = console()
    out.print(f"[bold]{esc(a.id)}[/]  {esc(a.status)}")
    out.print(
        f"  run {esc(a.run_id)}, step {esc(a.step_id)}: {esc(a.action)} (risk {esc(a.risk or '?')})"
    )
    out.print(f"  agent {esc(a.agent or '-')}, department {esc(a.department or '-')}")
    out.print(f"  goal: {esc(a.goal)}")
    out.print(f"  why asked: {esc(a.reason)} (rule {esc(a.rule_id)})")
    out.print(f"  args: {esc(json.dumps(a.args, default=str))}")
    out.print(f"  requested {when(a.requested_at)}, expires {when(a.expires_at)}")
    if a.decided_by:
        out.print(
            f"  decided {when(a.decided_at)} by {esc(a.decided_by)}"
            + (f": {esc(a.comment)}" if a.comment else "")
        )
    if a.edited_args is not None:
        out.print(f"  edited args: {esc(json.dumps(a.edited_args, default=str))}")


@approvals_app.command("list")
def list_cmd(
    workspace: Workspace = None,
    status: Annotated[
        str | None, typer.Option(help="pending, approved, edited, denied, expired.")
    ] = "pending",
    all_: Annotated[bool, typer.Option("--all", help="Every status.")] = False,
    run: Annotated[str | None, typer.Option(help="Only this run.")] = None,
) -> None:
    """Approvals, oldest first (expired ones are marked expired as they are listed)."""
    from openlam.cli.console import Column, console, print_table
    from openlam.governance.api import list_approvals

    rows = list_approvals(_settings(workspace), status=None if all_ else status, run_id=run)
    out = console()
    if not rows:
        out.print("No approvals" + ("" if all_ else f" with status {status}") + ".", markup=False)
        return
    print_table(
        out,
        [
            Column("id", key=True),
            "status",
            Column("run", key=True),
            "step",
            "action",
            "department",
            "why",
        ],
        (
            (a.id, a.status, a.run_id, a.step_id, a.action, a.department or "-", a.reason[:70])
            for a in rows
        ),
    )


@approvals_app.command("show")
def show(approval_id: Id, workspace: Workspace = None) -> None:
    """Everything about one approval."""
    from openlam.governance.api import show_approval

    _print(show_approval(_settings(workspace), approval_id))


@approvals_app.command("approve")
def approve(
    approval_id: Id, workspace: Workspace = None, as_: As = None, comment: Comment = ""
) -> None:
    """Let the step run as requested."""
    from openlam.governance.api import approve as do

    _print(do(_settings(workspace), approval_id, principal=as_, comment=comment))


@approvals_app.command("deny")
def deny(
    approval_id: Id, workspace: Workspace = None, as_: As = None, comment: Comment = ""
) -> None:
    """Refuse the step; the run replans around it or ends blocked."""
    from openlam.governance.api import deny as do

    _print(do(_settings(workspace), approval_id, principal=as_, comment=comment))


@approvals_app.command("edit")
def edit(
    approval_id: Id,
    set_: Annotated[
        list[str],
        typer.Option(
            "--set", help="NAME=VALUE (VALUE as JSON if it parses, else text); repeatable."
        ),
    ],
    workspace: Workspace = None,
    as_: As = None,
    comment: Comment = "",
) -> None:
    """Approve with changed arguments (the change is recorded)."""
    import json

    from openlam.errors import UserError
    from openlam.governance.api import edit as do

    changes: dict[str, Any] = {}
    for item in set_:
        name, sep, raw = item.partition("=")
        if not sep or not name:
            raise UserError(f"--set {item!r} is not NAME=VALUE", "e.g. --set to=bob@example.com")
        try:
            changes[name] = json.loads(raw)
        except ValueError:
            changes[name] = raw
    _print(do(_settings(workspace), approval_id, changes, principal=as_, comment=comment))
