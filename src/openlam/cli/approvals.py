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

    from rich.console import Console

    def when(ts: float | None) -> str:
        return datetime.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S") if ts else "-"

    console = Console(highlight=False)
    console.print(f"[bold]{approval.id}[/]  {approval.status}")
    console.print(
        f"  run {approval.run_id}, step {approval.step_id}: {approval.action} "
        f"(risk {approval.risk or '?'})"
    )
    console.print(f"  agent {approval.agent or '-'}, department {approval.department or '-'}")
    console.print(f"  goal: {approval.goal}")
    console.print(f"  why asked: {approval.reason} [rule {approval.rule_id}]")
    console.print(f"  args: {json.dumps(approval.args, default=str)}")
    console.print(f"  requested {when(approval.requested_at)}, expires {when(approval.expires_at)}")
    if approval.decided_by:
        console.print(
            f"  decided {when(approval.decided_at)} by {approval.decided_by}"
            + (f": {approval.comment}" if approval.comment else "")
        )
    if approval.edited_args is not None:
        console.print(f"  edited args: {json.dumps(approval.edited_args, default=str)}")


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
    from rich.console import Console
    from rich.table import Table

    from openlam.governance.api import list_approvals

    rows = list_approvals(_settings(workspace), status=None if all_ else status, run_id=run)
    console = Console(highlight=False)
    if not rows:
        console.print("No approvals" + ("" if all_ else f" with status {status}") + ".")
        return
    table = Table(box=None)
    for col in ("id", "status", "run", "step", "action", "department", "why"):
        table.add_column(col)
    for a in rows:
        table.add_row(
            a.id, a.status, a.run_id, a.step_id, a.action, a.department or "-", a.reason[:70]
        )
    console.print(table)


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
