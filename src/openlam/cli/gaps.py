"""``openlam gaps``: capabilities the workforce was asked for and lacks."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def install(app: typer.Typer) -> None:
    app.command("gaps")(gaps)


def gaps(
    workspace: Annotated[
        Path | None, typer.Option(help="Workspace directory (default: cwd).")
    ] = None,
    limit: Annotated[int, typer.Option(min=1)] = 50,
    json_output: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Missing capabilities, most requested first.

    Each with the kind of source that could fill it: MCP server, OpenAPI service, plugin.
    """
    import dataclasses
    import json

    from openlam.cli.console import console, print_table
    from openlam.config import load_settings
    from openlam.governance.api import list_gaps

    rows = list_gaps(load_settings(workspace), limit)
    if json_output:
        typer.echo(json.dumps([dataclasses.asdict(g) for g in rows], indent=2))
        return
    out = console()
    if not rows:
        out.print("No capability gaps recorded.")
        return
    print_table(
        out,
        ["asked", "what", "why", "could come from", "last goal"],
        ((g.count, g.what, g.why[:60], g.source, g.goal[:50]) for g in rows),
    )
    out.print("[dim]'could come from' is a keyword-based suggestion of where to look.[/]")
