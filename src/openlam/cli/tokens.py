"""``openlam tokens create|list|revoke`` and ``openlam users add|list|remove``: who may
use the server (``openlam serve``), with which role."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Annotated

import typer

tokens_app = typer.Typer(help="API tokens for the server.", no_args_is_help=True)
users_app = typer.Typer(help="Dashboard users (log in with a password).", no_args_is_help=True)
Workspace = Annotated[Path | None, typer.Option(help="Workspace directory (default: cwd).")]
RoleOpt = Annotated[
    str,
    typer.Option(
        "--role",
        help="viewer (read), operator (+ submit, cancel), approver (+ decide "
        "approvals), admin (everything).",
    ),
]


def install(app: typer.Typer) -> None:
    app.add_typer(tokens_app, name="tokens")
    app.add_typer(users_app, name="users")


def _credentials(workspace: Path | None):
    from openlam.config import load_settings
    from openlam.memory.store import Store
    from openlam.server.credentials import Credentials

    return Credentials(Store(load_settings(workspace).app_database_url).engine)


def _when(ts: float | None) -> str:
    return datetime.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M") if ts else "-"


@tokens_app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="Who or what uses it (its principal).")],
    role: RoleOpt = "viewer",
    workspace: Workspace = None,
) -> None:
    """Create a token and print it once (only its hash is kept)."""
    from openlam.server.credentials import check_role

    check_role(role)
    info, token = _credentials(workspace).create_token(name, role)
    typer.echo(token)
    typer.echo(
        f"token {info.id} for {name} ({role}); it is shown only now: keep it in a secret store",
        err=True,
    )


@tokens_app.command("list")
def list_tokens(
    workspace: Workspace = None,
    all_: Annotated[bool, typer.Option("--all", help="With revoked ones.")] = False,
) -> None:
    """Tokens: id, name, role, created, last used."""
    rows = _credentials(workspace).tokens(include_revoked=all_)
    if not rows:
        typer.echo("No tokens. Create one with: openlam tokens create NAME --role ROLE")
        return
    for t in rows:
        state = (
            f"revoked {_when(t.revoked_at)}"
            if t.revoked_at
            else f"last used {_when(t.last_used_at)}"
        )
        typer.echo(f"{t.id}  {t.name}  {t.role}  created {_when(t.created_at)}  {state}")


@tokens_app.command("revoke")
def revoke(
    token: Annotated[str, typer.Argument(help="Token id, or a name (all its tokens).")],
    workspace: Workspace = None,
) -> None:
    """Revoke a token (servers refuse it within seconds)."""
    for t in _credentials(workspace).revoke_token(token):
        typer.echo(f"revoked {t.id} ({t.name}, {t.role})")


@users_app.command("add")
def add_user(
    name: Annotated[str, typer.Argument(help="User name (their principal).")],
    role: RoleOpt = "viewer",
    workspace: Workspace = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
    replace: Annotated[
        bool, typer.Option(help="Set a new password and role for an existing user.")
    ] = False,
) -> None:
    """Add a user who logs in to the dashboard with a password (prompted)."""
    import sys

    from openlam.server.credentials import check_role

    check_role(role)
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    _credentials(workspace).add_user(name, role, password, replace=replace)
    typer.echo(f"user {name} ({role}) can log in")


@users_app.command("list")
def list_users(workspace: Workspace = None) -> None:
    """Users and their roles."""
    rows = _credentials(workspace).users()
    if not rows:
        typer.echo("No users. Add one with: openlam users add NAME --role ROLE")
    for name, role in rows:
        typer.echo(f"{name}  {role}")


@users_app.command("remove")
def remove_user(name: Annotated[str, typer.Argument()], workspace: Workspace = None) -> None:
    """Remove a user (their sessions end within seconds)."""
    _credentials(workspace).remove_user(name)
    typer.echo(f"removed {name}")
