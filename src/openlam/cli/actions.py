"""``openlam actions list|show``: the action surface of this workspace, from every source
(built-ins, plugins, MCP servers, OpenAPI services)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

actions_app = typer.Typer(help="The actions agents can take, from every source.",
                          no_args_is_help=True)
Workspace = Annotated[Path | None, typer.Option(help="Workspace directory (default: cwd).")]
RISKS = ("read", "write", "external", "financial", "destructive")


def install(app: typer.Typer) -> None:
    app.add_typer(actions_app, name="actions")


def load_registry(workspace: Path | None) -> Any:
    """Every source's actions; plugin problems are collected in ``load_errors`` (printed
    by the commands as warnings, so the registry's own log line is held back)."""
    import logging

    from openlam.actions.registry import load_plugins
    from openlam.config import load_settings

    settings = load_settings(workspace)
    logger = logging.getLogger("openlam.actions.registry")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        return load_plugins(settings=settings)
    finally:
        logger.setLevel(level)


@actions_app.command("list")
def list_actions(
    risk: Annotated[list[str] | None, typer.Option(
        help=f"Only actions of this risk tier ({', '.join(RISKS)}); repeatable.")] = None,
    source: Annotated[str | None, typer.Option(
        help="Only actions from this source: a plugin (email), a kind (mcp, openapi) or "
             "one server or service (mcp:time, openapi:crm).")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    workspace: Workspace = None,
) -> None:
    """Every action, with its risk tier and source."""
    import json

    from rich.console import Console
    from rich.table import Table

    from openlam.errors import UserError

    for tier in risk or []:
        if tier not in RISKS:
            raise UserError(f"unknown risk tier {tier!r}", f"use one of {', '.join(RISKS)}")
    registry = load_registry(workspace)
    specs = [s for s in registry if (not risk or s.risk.value in risk)
             and (source is None or _from(s.source, source))]
    if json_output:
        typer.echo(json.dumps([{"name": s.name, "risk": s.risk.value, "source": s.source,
                                "description": s.description} for s in specs], indent=2))
        return
    console = Console(highlight=False)
    if not specs:
        sources = sorted({s.source for s in registry})
        console.print("No actions match." + (f" Sources: {', '.join(sources)}" if sources else ""))
    else:
        table = Table("action", "risk", "source", "description")
        for spec in specs:
            table.add_row(spec.name, _risk_text(spec.risk.value), spec.source,
                          _first_sentence(spec.description))
        console.print(table)
        console.print(f"[dim]{len(specs)} of {len(registry)} actions[/]")
    _warn(registry.load_errors)


@actions_app.command("show")
def show(name: Annotated[str, typer.Argument(help="Action name, e.g. files.write.")],
         json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
         workspace: Workspace = None) -> None:
    """One action: description, risk, source, required secrets, input and output schema."""
    import difflib
    import json

    from rich.console import Console
    from rich.syntax import Syntax
    from rich.table import Table

    from openlam.errors import UserError

    registry = load_registry(workspace)
    spec = registry.get(name)
    if spec is None:
        close = difflib.get_close_matches(name, [s.name for s in registry], n=3, cutoff=0.5)
        raise UserError(f"no action named {name}",
                        f"did you mean {', '.join(close)}?" if close
                        else "see `openlam actions list`")
    info = {"name": spec.name, "description": spec.description, "risk": spec.risk.value,
            "source": spec.source, "idempotent": spec.idempotent,
            "secrets": list(spec.secrets), "timeout": spec.timeout,
            "verified": spec.verify is not None, "input_schema": spec.input_schema,
            "output_schema": spec.output_schema}
    if json_output:
        typer.echo(json.dumps(info, indent=2))
        return
    console = Console(highlight=False)
    table = Table.grid(padding=(0, 2))
    table.add_row("[bold]action[/]", spec.name)
    table.add_row("[bold]description[/]", spec.description)
    table.add_row("[bold]risk[/]", _risk_text(spec.risk.value))
    table.add_row("[bold]source[/]", spec.source)
    table.add_row("[bold]idempotent[/]", "yes" if spec.idempotent else "no")
    table.add_row("[bold]effect check[/]", "yes" if spec.verify else "no")
    if spec.timeout:
        table.add_row("[bold]timeout[/]", f"{spec.timeout:g}s")
    table.add_row("[bold]secrets[/]", _secrets_text(spec.secrets, workspace))
    table.add_row("[bold]call[/]", spec.signature())
    console.print(table)
    console.print("\n[bold]input schema[/]")
    console.print(Syntax(json.dumps(spec.input_schema, indent=2), "json", word_wrap=True))
    if spec.output_schema:
        console.print("[bold]output schema[/]")
        console.print(Syntax(json.dumps(spec.output_schema, indent=2), "json", word_wrap=True))


def _from(spec_source: str, wanted: str) -> bool:
    """``mcp`` matches ``mcp:time``; ``mcp:time`` matches only that server."""
    return spec_source == wanted or spec_source.split(":", 1)[0] == wanted


def _risk_text(tier: str) -> str:
    color = {"read": "green", "write": "cyan", "external": "yellow", "financial": "magenta",
             "destructive": "red"}.get(tier, "white")
    return f"[{color}]{tier}[/]"


def _first_sentence(text: str, limit: int = 80) -> str:
    text = " ".join(text.split())
    cut = text.find(". ")
    if 0 < cut < limit:
        text = text[:cut + 1]
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _secrets_text(names: tuple[str, ...], workspace: Path | None) -> str:
    """Each required secret and whether it is set (never its value)."""
    if not names:
        return "none"
    lookup = _secret_lookup(workspace)
    parts = []
    for name in names:
        try:
            present = bool(lookup(name))
        except Exception:  # an unreadable store: say so rather than fail the listing
            present = None
        state = {True: "[green]set[/]", False: "[red]not set[/]", None: "[yellow]?[/]"}[present]
        parts.append(f"{name} ({state})")
    return ", ".join(parts)


def _secret_lookup(workspace: Path | None) -> Any:
    import os

    try:
        from openlam.actions.secrets import secret_lookup
        from openlam.config import load_settings
    except ImportError:
        return os.environ.get
    return secret_lookup(load_settings(workspace))


def _warn(errors: list[str]) -> None:
    from rich.console import Console

    if errors:
        console = Console(stderr=True, highlight=False)
        for error in errors:
            console.print(f"[yellow]warning:[/] {error}")
