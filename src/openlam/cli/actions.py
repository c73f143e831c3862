"""``openlam actions list|show|trust|grant|revoke``: the action surface of this workspace,
from every source (built-ins, plugins, MCP servers, OpenAPI services), and what the user
decides about a configured source: whether they vouch for it, who may use it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

actions_app = typer.Typer(
    help="The actions agents can take, from every source.", no_args_is_help=True
)
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
    risk: Annotated[
        list[str] | None,
        typer.Option(help=f"Only actions of this risk tier ({', '.join(RISKS)}); repeatable."),
    ] = None,
    source: Annotated[
        str | None,
        typer.Option(
            help="Only actions from this source: a plugin (email), a kind (mcp, openapi) or "
            "one server or service (mcp:time, openapi:crm)."
        ),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    workspace: Workspace = None,
) -> None:
    """Every action, with its risk tier and source."""
    import json

    from openlam.actions.risk import reason_of
    from openlam.cli.console import Column, console, esc, print_table
    from openlam.errors import UserError

    for tier in risk or []:
        if tier not in RISKS:
            raise UserError(f"unknown risk tier {tier!r}", f"use one of {', '.join(RISKS)}")
    registry = load_registry(workspace)
    specs = [
        s
        for s in registry
        if (not risk or s.risk.value in risk) and (source is None or _from(s.source, source))
    ]
    if json_output:
        from openlam.actions.registry import action_summary

        typer.echo(json.dumps([action_summary(s) for s in specs], indent=2))
        return
    out = console()
    if not specs:
        sources = sorted({s.source for s in registry})
        out.print("No actions match." + (f" Sources: {esc(', '.join(sources))}" if sources else ""))
    else:
        print_table(
            out,
            [
                Column("action", key=True),
                Column("risk", style=risk_style),
                "why",
                "source",
                "description",
            ],
            (
                (
                    spec.name,
                    spec.risk.value,
                    reason_of(spec),
                    spec.source,
                    _first_sentence(spec.description),
                )
                for spec in specs
            ),
        )
        out.print(f"[dim]{len(specs)} of {len(registry)} actions[/]")
    _warn(registry.load_errors)


@actions_app.command("show")
def show(
    name: Annotated[str, typer.Argument(help="Action name, e.g. files.write.")],
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    workspace: Workspace = None,
) -> None:
    """One action: description, risk, source, required secrets, input and output schema."""
    import difflib
    import json

    from rich.table import Table

    from openlam.actions.risk import reason_of
    from openlam.cli.console import console, esc
    from openlam.errors import UserError

    registry = load_registry(workspace)
    spec = registry.get(name)
    if spec is None:
        close = difflib.get_close_matches(name, [s.name for s in registry], n=3, cutoff=0.5)
        raise UserError(
            f"no action named {name}",
            f"did you mean {', '.join(close)}?" if close else "see `openlam actions list`",
        )
    grants = _grants_of(spec.source, workspace)
    info = {
        "name": spec.name,
        "description": spec.description,
        "risk": spec.risk.value,
        "risk_reason": reason_of(spec),
        "egress": bool(getattr(spec, "egress", False)),
        "grants": grants,
        "source": spec.source,
        "idempotent": spec.idempotent,
        "secrets": list(spec.secrets),
        "timeout": spec.timeout,
        "verified": spec.verify is not None,
        "input_schema": spec.input_schema,
        "output_schema": spec.output_schema,
    }
    if json_output:
        typer.echo(json.dumps(info, indent=2))
        return
    from openlam.actions.grants import describe_grants

    out = console()
    table = Table.grid(padding=(0, 2))
    table.add_row("[bold]action[/]", esc(spec.name))
    table.add_row("[bold]description[/]", esc(spec.description))
    table.add_row("[bold]risk[/]", f"{_risk_text(spec.risk.value)}: {esc(reason_of(spec))}")
    if getattr(spec, "egress", False):
        table.add_row("[bold]egress[/]", "yes: it sends data to a host its arguments name")
    table.add_row("[bold]source[/]", esc(spec.source))
    if grants is not None:
        table.add_row(
            "[bold]may be used by[/]",
            esc(describe_grants(grants)) + " (and agents whose own actions name it)",
        )
    table.add_row("[bold]idempotent[/]", "yes" if spec.idempotent else "no")
    table.add_row("[bold]effect check[/]", "yes" if spec.verify else "no")
    if spec.timeout:
        table.add_row("[bold]timeout[/]", f"{spec.timeout:g}s")
    table.add_row("[bold]secrets[/]", _secrets_text(spec.secrets, workspace))
    table.add_row("[bold]call[/]", esc(spec.signature()))
    out.print(table)
    out.print("\n[bold]input schema[/]")
    _print_json(out, spec.input_schema)
    if spec.output_schema:
        out.print("[bold]output schema[/]")
        _print_json(out, spec.output_schema)


def _print_json(out: Any, value: Any) -> None:
    """Highlighted on a terminal; plain text elsewhere (a Syntax block would pad every
    line to the unwrapped console's width)."""
    import json

    from rich.syntax import Syntax
    from rich.text import Text

    text = json.dumps(value, indent=2)
    out.print(Syntax(text, "json", word_wrap=True) if out.is_terminal else Text(text))


@actions_app.command("trust")
def trust(
    source: Annotated[str, typer.Argument(help="An MCP server or OpenAPI service.")],
    undo: Annotated[bool, typer.Option("--undo", help="Stop vouching for it.")] = False,
    workspace: Workspace = None,
) -> None:
    """Vouch for a source: believe what it says about its actions' risk."""
    from openlam.actions.kinds import find
    from openlam.config import load_settings

    settings = load_settings(workspace)
    kind, config = find(settings, source)
    kind.update(settings, config.name, trusted=not undo)
    typer.echo(
        f"{'No longer vouching' if undo else 'Vouching'} for {kind.what} {config.name}: "
        + (
            "its actions take the method's or the unvouched default tiers again."
            if undo
            else "its own risk hints now set its actions' tiers."
        )
        + f" See them with `openlam actions list --source {kind.kind}:{config.name}`."
    )


@actions_app.command("grant")
def grant(
    source: Annotated[str, typer.Argument(help="An MCP server or OpenAPI service.")],
    who: Annotated[list[str], typer.Argument(help="AGENT, department:NAME or all.")],
    workspace: Workspace = None,
) -> None:
    """Let agents use a source's actions."""
    _change_grants(source, who, workspace, add=True)


@actions_app.command("revoke")
def revoke(
    source: Annotated[str, typer.Argument(help="An MCP server or OpenAPI service.")],
    who: Annotated[list[str], typer.Argument(help="AGENT, department:NAME or all.")],
    workspace: Workspace = None,
) -> None:
    """Stop agents from using a source's actions."""
    _change_grants(source, who, workspace, add=False)


def _change_grants(source: str, who: list[str], workspace: Path | None, *, add: bool) -> None:
    from openlam.actions.grants import describe_grants
    from openlam.actions.kinds import find
    from openlam.actions.sources import check_grant
    from openlam.cli.sources import check_grantees
    from openlam.config import load_settings
    from openlam.errors import UserError

    settings = load_settings(workspace)
    kind, config = find(settings, source)
    given = [check_grant(w) for w in who]
    grants = list(config.grants)
    if add:
        check_grantees(settings, given)
        grants += [g for g in given if g not in grants]
    else:
        missing = [g for g in given if g not in grants]
        if missing:
            raise UserError(
                f"{config.name} is not granted to {', '.join(missing)}",
                f"it is granted to: {describe_grants(grants)}",
            )
        grants = [g for g in grants if g not in given]
    kind.update(settings, config.name, grants=grants)
    typer.echo(f"Agents that may use {config.name}.*: {describe_grants(grants)}.")


def _grants_of(source: str, workspace: Path | None) -> list[str] | None:
    """The grants of a configured source (``mcp:git``); None for built-ins and plugins."""
    from openlam.actions.kinds import all_kinds
    from openlam.config import load_settings

    kind_name, _, name = source.partition(":")
    for kind in all_kinds():
        if kind.kind == kind_name and name:
            config = kind.load(load_settings(workspace)).get(name)
            return list(config.grants) if config is not None else None
    return None


def _from(spec_source: str, wanted: str) -> bool:
    """``mcp`` matches ``mcp:time``; ``mcp:time`` matches only that server."""
    return spec_source == wanted or spec_source.split(":", 1)[0] == wanted


def _risk_text(tier: str) -> str:
    return f"[{risk_style(tier)}]{tier}[/]"


def risk_style(tier: str) -> str:
    """The colour of a risk tier wherever the CLI lists actions."""
    return {
        "read": "green",
        "write": "cyan",
        "external": "yellow",
        "financial": "magenta",
        "destructive": "red",
    }.get(tier, "white")


def _first_sentence(text: str, limit: int = 80) -> str:
    text = " ".join(text.split())
    cut = text.find(". ")
    if 0 < cut < limit:
        text = text[: cut + 1]
    return text if len(text) <= limit else text[: limit - 1] + "…"


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
    from openlam.cli.console import console, esc

    if errors:
        out = console(stderr=True)
        for error in errors:
            out.print(f"[yellow]warning:[/] {esc(error)}")
