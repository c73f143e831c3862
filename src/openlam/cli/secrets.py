"""``openlam secrets set|list|rm``: the workspace's encrypted credentials."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from openlam.actions.secrets import SecretStore

secrets_app = typer.Typer(
    name="secrets",
    no_args_is_help=True,
    help="Credentials for actions, encrypted in the workspace (.openlam/secrets.enc). "
    "Environment variables of the same name take precedence.",
)

Workspace = Annotated[
    Path | None,
    typer.Option(
        help="Workspace directory (default: $OPENLAM_WORKSPACE or the current directory)."
    ),
]


def install(app: typer.Typer) -> None:
    app.add_typer(secrets_app, name="secrets")


def _store(workspace: Path | None) -> SecretStore:
    from openlam.actions.secrets import SecretStore
    from openlam.config import load_settings

    return SecretStore.for_settings(load_settings(workspace))


@secrets_app.command("set")
def set_secret(
    name: Annotated[str, typer.Argument(help="Secret name, e.g. SMTP_PASSWORD.")],
    value: Annotated[
        str | None,
        typer.Option(
            help="The value. Omit it to be prompted (hidden) or to read it from standard input; "
            "a value on the command line ends up in your shell history."
        ),
    ] = None,
    workspace: Workspace = None,
) -> None:
    """Store a secret (replacing any previous value)."""
    from openlam.actions.secrets import MIN_REDACT_LENGTH, check_name

    check_name(name)
    if value is None:
        value = _read_value(name)
    store = _store(workspace)
    store.set(name, value)
    typer.echo(f"stored {name} in {store.path}")
    if len(value) < MIN_REDACT_LENGTH:
        typer.secho(
            f"warning: values shorter than {MIN_REDACT_LENGTH} characters are not "
            "redacted from logs and reports",
            fg="yellow",
            err=True,
        )


def _read_value(name: str) -> str:
    """Prompt (hidden, twice) on a terminal; otherwise read standard input, less one
    trailing newline (``echo VALUE | openlam secrets set NAME``)."""
    if sys.stdin.isatty():
        return str(typer.prompt(f"value of {name}", hide_input=True, confirmation_prompt=True))
    text = sys.stdin.read()
    text = text[:-1] if text.endswith("\n") else text
    return text[:-1] if text.endswith("\r") else text


@secrets_app.command("list")
def list_secrets(workspace: Workspace = None) -> None:
    """List the names of stored secrets (never their values)."""
    for name in _store(workspace).names():
        typer.echo(name)


@secrets_app.command("rm")
def remove_secret(
    name: Annotated[str, typer.Argument(help="Secret name.")],
    workspace: Workspace = None,
) -> None:
    """Remove a stored secret."""
    from openlam.errors import UserError

    store = _store(workspace)
    if not store.remove(name):
        raise UserError(
            f"no secret {name!r} in {store.path}",
            "see the stored names with `openlam secrets list`",
        )
    typer.echo(f"removed {name}")
