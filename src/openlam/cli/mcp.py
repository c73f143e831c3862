"""``openlam mcp add|list|rm|test``: MCP servers whose tools become actions;
``openlam mcp serve``: the workforce itself as an MCP server (stdio)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from openlam.cli.sources import pairs, print_access, show
from openlam.cli.sources import remove as remove_source

mcp_app = typer.Typer(
    help="MCP servers whose tools become actions (NAME.tool); `serve`: "
    "this workforce as an MCP server.",
    no_args_is_help=True,
)
Workspace = Annotated[Path | None, typer.Option(help="Workspace directory (default: cwd).")]


def install(app: typer.Typer) -> None:
    app.add_typer(mcp_app, name="mcp")


@mcp_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="Server name: the prefix of its actions.")],
    command: Annotated[
        list[str] | None,
        typer.Argument(
            help="After --: the command that starts a stdio server, with its arguments."
        ),
    ] = None,
    url: Annotated[
        str | None, typer.Option(help="Streamable HTTP endpoint, e.g. http://127.0.0.1:8000/mcp.")
    ] = None,
    env: Annotated[
        list[str] | None,
        typer.Option(help="KEY=VALUE environment variable for a stdio server (repeatable)."),
    ] = None,
    env_secret: Annotated[
        list[str] | None,
        typer.Option(
            help="KEY=SECRET_NAME: environment variable filled from a secret when the server "
            "starts (repeatable)."
        ),
    ] = None,
    bearer: Annotated[
        str | None, typer.Option(help="SECRET_NAME of a bearer token for an HTTP server.")
    ] = None,
    header_secret: Annotated[
        list[str] | None,
        typer.Option(help="HEADER=SECRET_NAME: HTTP header filled from a secret (repeatable)."),
    ] = None,
    risk: Annotated[
        list[str] | None,
        typer.Option(
            help="TOOL=TIER: the risk tier of one tool, whatever the server says (repeatable)."
        ),
    ] = None,
    trust: Annotated[
        bool,
        typer.Option(
            "--trust",
            help="Vouch for the server: believe its tools' read-only/destructive "
            "hints (otherwise every tool is external).",
        ),
    ] = False,
    grant: Annotated[
        list[str] | None,
        typer.Option(
            help="AGENT | department:NAME | all: who may use its tools, besides the operator "
            "(repeatable)."
        ),
    ] = None,
    max_message_mb: Annotated[
        float | None,
        typer.Option(min=0.1, help="Largest result an HTTP server may send, in MiB (default 1)."),
    ] = None,
    timeout: Annotated[
        float | None, typer.Option(min=0.1, help="Seconds a tool call may take.")
    ] = None,
    cwd: Annotated[
        str | None,
        typer.Option(help="Working directory of a stdio server, relative to the workspace."),
    ] = None,
    connect: Annotated[
        bool,
        typer.Option(help="Start the server now and cache its tools (--no-connect: save only)."),
    ] = True,
    replace: Annotated[
        bool, typer.Option("--replace", help="Replace a server of that name.")
    ] = False,
    workspace: Workspace = None,
) -> None:
    """Add an MCP server: `openlam mcp add NAME -- COMMAND ARGS…` or `--url URL`.

    The server is started once to list its tools (cached in the workspace), then stopped;
    during runs it starts on first use.
    """
    import asyncio

    from openlam.actions.adding import add_mcp_server
    from openlam.config import load_settings

    settings = load_settings(workspace)
    server, cache = asyncio.run(
        add_mcp_server(
            settings,
            name,
            command=command,
            url=url,
            env=pairs(env, "--env"),
            env_secrets=pairs(env_secret, "--env-secret"),
            bearer=bearer,
            header_secrets=pairs(header_secret, "--header-secret"),
            risk=pairs(risk, "--risk", shape="TOOL=TIER", example="git_log=read", need_value=True),
            trust=trust,
            grants=grant,
            max_message_mb=max_message_mb,
            timeout=timeout,
            cwd=cwd,
            connect=connect,
            replace=replace,
        )
    )
    if cache is not None:
        _print_tools(name, server, cache)
    else:
        typer.echo(f"Saved MCP server {name}; run `openlam mcp test {name}` to list its tools.")
    print_access(server, "MCP server")


@mcp_app.command("list")
def list_servers(workspace: Workspace = None) -> None:
    """The configured servers, with their cached tools."""
    import datetime

    from openlam.actions import mcp
    from openlam.cli.console import Column

    def row(name: str, server: Any, cache: dict[str, Any] | None) -> list[str]:
        known = [name, server.transport, server.describe()]
        if cache is None:
            return [*known, "not listed", f"run `openlam mcp test {name}`"]
        when = datetime.datetime.fromtimestamp(cache.get("fetched_at", 0)).strftime(
            "%Y-%m-%d %H:%M"
        )
        if cache.get("server") != server.fingerprint():
            when += " (config changed since)"
        return [*known, str(len(cache["tools"])), when]

    show(
        mcp.SERVERS,
        workspace,
        (
            Column("name", key=True),
            "transport",
            "command / URL",
            Column("tools", style=_warn_if_not),
            "listed at",
        ),
        row,
        "openlam mcp add NAME -- COMMAND ARGS… or openlam mcp add NAME --url URL",
    )


def _warn_if_not(value: str) -> str | None:
    return "yellow" if value.startswith("not ") else None


@mcp_app.command("rm")
def remove(
    name: Annotated[str, typer.Argument(help="Server name.")], workspace: Workspace = None
) -> None:
    """Remove a server (its actions disappear)."""
    from openlam.actions import mcp

    remove_source(mcp.SERVERS, name, workspace)


@mcp_app.command("test")
def test(
    name: Annotated[str, typer.Argument(help="Server name.")], workspace: Workspace = None
) -> None:
    """Start a server, list its tools (refreshing the cache) and stop it again."""
    import asyncio

    from openlam.actions import mcp
    from openlam.actions.registry import ActionRegistry
    from openlam.config import load_settings

    settings = load_settings(workspace)
    server = mcp.SERVERS.get(settings, name)
    cache = asyncio.run(_refresh(settings, server))
    _print_tools(name, server, cache)
    registry = ActionRegistry()
    mcp.register(registry, settings)  # reports --risk names the server no longer has
    for problem in registry.load_errors:
        typer.secho(f"warning: {problem}", fg="yellow", err=True)


async def _refresh(settings: Any, server: Any) -> dict[str, Any]:
    from openlam.actions.adding import refresh_mcp_server

    return await refresh_mcp_server(settings, server)


def _print_tools(name: str, server: Any, cache: dict[str, Any]) -> None:
    from pathlib import Path

    from openlam.actions import mcp
    from openlam.actions.risk import reason_of
    from openlam.cli.actions import risk_style
    from openlam.cli.console import Column, console, esc, print_table
    from openlam.cli.report import short

    out = console()
    info = cache.get("server_info") or {}
    specs = mcp.server_specs(server, cache, Path("."))
    out.print(
        f"[green]MCP server {esc(name)}[/] ({esc(info.get('name', '?'))} "
        f"{esc(info.get('version', ''))}, protocol "
        f"{esc(cache.get('protocol_version', '?'))}) answered in "
        f"{cache.get('_seconds', 0):.2f}s with {len(cache['tools'])} tools:"
    )
    print_table(
        out,
        [Column("action", key=True), Column("risk", style=risk_style), "why", "description"],
        (
            (
                spec.name,
                spec.risk.value,
                reason_of(spec),
                short(" ".join(spec.description.split()), 90),
            )
            for spec in specs
        ),
    )
    unusable = mcp.unusable_tools(cache)
    if unusable:
        out.print(
            f"[yellow]Not offered[/] (they run only as MCP tasks, which OpenLAM does "
            f"not use): {esc(', '.join(unusable))}"
        )


@mcp_app.command("serve")
def serve(
    workspace: Workspace = None,
    no_worker: Annotated[
        bool,
        typer.Option(
            "--no-worker",
            help="Do not run the goals here: an `openlam serve` or `openlam "
            "worker` sharing the workspace's database does.",
        ),
    ] = False,
) -> None:
    """Serve this workspace's workforce to an MCP client over stdio (tools run_goal,
    run_status, list_approvals, decide_approval, list_agents).

    Configure it in the client as the command `openlam mcp serve --workspace DIR`. Over
    HTTP, the same tools are at /mcp of `openlam serve` (token auth).
    """
    import asyncio
    import logging

    from openlam.config import load_settings
    from openlam.server.compat.mcp import serve_stdio

    logging.basicConfig(level=logging.WARNING)  # stderr: stdout carries the protocol
    asyncio.run(serve_stdio(load_settings(workspace), run_worker=not no_worker))
