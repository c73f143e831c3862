"""``openlam audit head|verify|export``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

audit_app = typer.Typer(help="The hash-chained audit log.", no_args_is_help=True)
Workspace = Annotated[Path | None, typer.Option(help="Workspace directory (default: cwd).")]


def install(app: typer.Typer) -> None:
    app.add_typer(audit_app, name="audit")


@audit_app.command("head")
def head(workspace: Workspace = None) -> None:
    """Print the log's head as SEQ:HASH — keep it outside the database and pass it to
    `audit verify --expect` later."""
    from openlam.config import load_settings
    from openlam.governance.api import audit_head

    typer.echo(audit_head(load_settings(workspace)))


@audit_app.command("verify")
def verify(
    workspace: Workspace = None,
    expect: Annotated[
        str | None,
        typer.Option(
            help="An anchor printed by `audit head` (SEQ:HASH): fail unless that record "
            "is still in the log, unchanged."
        ),
    ] = None,
) -> None:
    """Check the chain: any edited, deleted or reordered record is found and named; with
    an anchor, truncation and a rehashed chain too."""
    from openlam.config import load_settings
    from openlam.governance.api import verify_audit

    result = verify_audit(load_settings(workspace), expect)
    typer.secho(str(result), fg="green" if result.ok else "red")
    if not result.ok:
        raise typer.Exit(1)


@audit_app.command("export")
def export(
    workspace: Workspace = None,
    out: Annotated[Path | None, typer.Option(help="Write JSONL here (default: stdout).")] = None,
) -> None:
    """Every record as one JSON line, oldest first."""
    import sys

    from openlam.config import load_settings
    from openlam.governance.api import export_audit

    settings = load_settings(workspace)
    if out is None:
        export_audit(settings, sys.stdout)
        return
    with out.open("w", encoding="utf-8") as fh:
        n = export_audit(settings, fh)
    typer.echo(f"{n} records written to {out}", err=True)
