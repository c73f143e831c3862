"""``openlam openapi add|list|refresh|rm``: REST services whose operations become actions."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from openlam.cli.sources import pairs, print_access, show
from openlam.cli.sources import remove as remove_source

openapi_app = typer.Typer(
    help="OpenAPI 3 services whose operations become actions (NAME.operation).",
    no_args_is_help=True,
)
Workspace = Annotated[Path | None, typer.Option(help="Workspace directory (default: cwd).")]


def install(app: typer.Typer) -> None:
    app.add_typer(openapi_app, name="openapi")


@openapi_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="Service name: the prefix of its actions.")],
    spec: Annotated[
        str, typer.Argument(help="The OpenAPI 3 document: a JSON/YAML file or an http(s) URL.")
    ],
    base_url: Annotated[
        str | None, typer.Option(help="Where to send requests (default: the spec's first server).")
    ] = None,
    auth: Annotated[
        str | None,
        typer.Option(
            help="bearer:SECRET | header:X-API-Key:SECRET | basic:USER_SECRET:PASS_SECRET | "
            "query:PARAM:SECRET — names of secrets, read when an operation is called."
        ),
    ] = None,
    risk: Annotated[
        list[str] | None,
        typer.Option(
            help="OPERATION=TIER: the risk tier of one operation, whatever the spec says "
            "(repeatable)."
        ),
    ] = None,
    trust: Annotated[
        bool,
        typer.Option(
            "--trust",
            help="Vouch for the service: believe its spec (x-openlam-risk, tool-type "
            "hints, the methods); otherwise every operation with a body is "
            "external.",
        ),
    ] = False,
    grant: Annotated[
        list[str] | None,
        typer.Option(
            help="AGENT | department:NAME | all: who may use its operations, besides the "
            "operator (repeatable)."
        ),
    ] = None,
    timeout: Annotated[
        float | None,
        typer.Option(min=0.1, help="Seconds one request may take in total (default 30)."),
    ] = None,
    replace: Annotated[
        bool, typer.Option("--replace", help="Replace a service of that name.")
    ] = False,
    workspace: Workspace = None,
) -> None:
    """Add a REST service from its OpenAPI spec; each operation becomes an action."""
    from openlam.actions.adding import add_openapi_service
    from openlam.config import load_settings

    settings = load_settings(workspace)
    risks = pairs(
        risk,
        "--risk",
        shape="OPERATION=TIER",
        example="delete_contact=destructive",
        need_value=True,
    )
    service, compiled = add_openapi_service(
        settings,
        name,
        spec,
        base_url=base_url,
        auth=auth,
        risk=risks,
        trust=trust,
        grants=grant,
        timeout=timeout,
        replace=replace,
    )
    _print_operations(service, compiled)
    print_access(service, "OpenAPI service")


@openapi_app.command("refresh")
def refresh(
    name: Annotated[str, typer.Argument(help="Service name.")], workspace: Workspace = None
) -> None:
    """Read the service's spec again and recompile its operations."""
    from openlam.actions import openapi
    from openlam.config import load_settings

    settings = load_settings(workspace)
    service = openapi.SERVICES.get(settings, name)
    compiled = openapi.prepare(service)
    openapi.save_service(settings, service, compiled)
    _print_operations(service, compiled)


@openapi_app.command("list")
def list_services(workspace: Workspace = None) -> None:
    """The configured services."""
    from openlam.actions import openapi
    from openlam.cli.console import Column

    def row(name: str, service: Any, compiled: dict[str, Any] | None) -> list[str]:
        if compiled is None:
            api, count = "not compiled", f"run `openlam openapi refresh {name}`"
        else:
            api, count = openapi.describe(compiled), str(len(compiled["operations"]))
        base = service.base_url or (compiled or {}).get("base_url") or "?"
        return [name, api, base, service.auth or "none", count]

    def warn(value: str) -> str | None:
        return "yellow" if value == "not compiled" else None

    show(
        openapi.SERVICES,
        workspace,
        (Column("name", key=True), Column("API", style=warn), "base URL", "auth", "operations"),
        row,
        "openlam openapi add NAME SPEC [--base-url URL] [--auth bearer:SECRET]",
    )


@openapi_app.command("rm")
def remove(
    name: Annotated[str, typer.Argument(help="Service name.")], workspace: Workspace = None
) -> None:
    """Remove a service (its actions disappear)."""
    from openlam.actions import openapi

    remove_source(openapi.SERVICES, name, workspace)


def _print_operations(service: Any, compiled: dict[str, Any]) -> None:
    from openlam.actions import openapi
    from openlam.actions.risk import reason_of
    from openlam.cli.actions import risk_style
    from openlam.cli.console import Column, console, esc, print_table

    out = console()
    specs = openapi.operation_specs(service, compiled)
    base = service.base_url or compiled.get("base_url")
    out.print(
        f"[green]OpenAPI service {esc(service.name)}[/]: "
        f"{esc(openapi.describe(compiled))} at {esc(base)}, {len(specs)} operations:"
    )
    print_table(
        out,
        [Column("action", key=True), Column("risk", style=risk_style), "why", "method", "path"],
        (
            (spec.name, spec.risk.value, reason_of(spec), op["method"], op["path"])
            for spec, op in zip(specs, compiled["operations"], strict=True)
        ),
    )
