"""``openlam openapi add|list|refresh|rm``: REST services whose operations become actions."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

openapi_app = typer.Typer(help="OpenAPI 3 services whose operations become actions "
                               "(NAME.operation).", no_args_is_help=True)
Workspace = Annotated[Path | None, typer.Option(help="Workspace directory (default: cwd).")]


def install(app: typer.Typer) -> None:
    app.add_typer(openapi_app, name="openapi")


@openapi_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="Service name: the prefix of its actions.")],
    spec: Annotated[str, typer.Argument(help="The OpenAPI 3 document: a JSON/YAML file or "
                                        "an http(s) URL.")],
    base_url: Annotated[str | None, typer.Option(help="Where to send requests (default: the "
                                                 "spec's first server).")] = None,
    auth: Annotated[str | None, typer.Option(
        help="bearer:SECRET | header:X-API-Key:SECRET | basic:USER_SECRET:PASS_SECRET | "
             "query:PARAM:SECRET — names of secrets, read when an operation is called.")
    ] = None,
    risk: Annotated[list[str] | None, typer.Option(
        help="OPERATION=TIER overriding the risk from the method (repeatable).")] = None,
    timeout: Annotated[float | None, typer.Option(min=0.1, help="Seconds one request may "
                                                  "take in total (default 30).")] = None,
    replace: Annotated[bool, typer.Option("--replace", help="Replace a service of that name.")
                       ] = False,
    workspace: Workspace = None,
) -> None:
    """Add a REST service from its OpenAPI spec; each operation becomes an action."""
    from openlam.actions import openapi
    from openlam.config import load_settings
    from openlam.errors import UserError

    settings = load_settings(workspace)
    openapi.check_name(name)
    existing = openapi.load_services(settings)
    if name in existing and not replace:
        raise UserError(f"an OpenAPI service named {name} is already configured "
                        f"({existing[name].spec})",
                        "pass --replace, or remove it first with `openlam openapi rm`")
    source = spec
    if not spec.startswith(("http://", "https://")):
        source = str(Path(spec).expanduser().resolve())
    options: dict[str, Any] = {"base_url": base_url, "auth": auth, "risk": _pairs(risk)}
    if timeout is not None:
        options["timeout"] = timeout
    service = openapi.ServiceConfig(name=name, spec=source, **options)
    compiled = openapi.prepare(service)
    openapi.save_service(settings, service, compiled)
    _print_operations(service, compiled)


@openapi_app.command("refresh")
def refresh(name: Annotated[str, typer.Argument(help="Service name.")],
            workspace: Workspace = None) -> None:
    """Read the service's spec again and recompile its operations."""
    from openlam.actions import openapi
    from openlam.config import load_settings

    settings = load_settings(workspace)
    service = _service(settings, name)
    compiled = openapi.prepare(service)
    openapi.save_service(settings, service, compiled)
    _print_operations(service, compiled)


@openapi_app.command("list")
def list_services(workspace: Workspace = None) -> None:
    """The configured services."""
    from rich.console import Console
    from rich.table import Table

    from openlam.actions import openapi
    from openlam.config import load_settings

    settings = load_settings(workspace)
    services = openapi.load_services(settings)
    console = Console(highlight=False)
    if not services:
        console.print("No OpenAPI services. Add one: openlam openapi add NAME SPEC "
                      "[--base-url URL] [--auth bearer:SECRET]")
        return
    table = Table("name", "API", "base URL", "auth", "operations")
    for name, service in services.items():
        compiled = openapi.read_compiled(settings, name)
        if compiled is None:
            api, count = "[yellow]not compiled[/]", f"run `openlam openapi refresh {name}`"
        else:
            api, count = openapi.describe(compiled), str(len(compiled["operations"]))
        base = service.base_url or (compiled or {}).get("base_url") or "?"
        table.add_row(name, api, base, service.auth or "none", count)
    console.print(table)


@openapi_app.command("rm")
def remove(name: Annotated[str, typer.Argument(help="Service name.")],
           workspace: Workspace = None) -> None:
    """Remove a service (its actions disappear)."""
    from openlam.actions import openapi
    from openlam.config import load_settings
    from openlam.errors import UserError

    settings = load_settings(workspace)
    if not openapi.remove_service(settings, name):
        raise UserError(f"no OpenAPI service named {name}", "see `openlam openapi list`")
    typer.echo(f"Removed OpenAPI service {name}.")


def _service(settings: Any, name: str) -> Any:
    from openlam.actions import openapi
    from openlam.errors import UserError

    services = openapi.load_services(settings)
    if name not in services:
        raise UserError(f"no OpenAPI service named {name}",
                        f"configured: {', '.join(services) or 'none'}")
    return services[name]


def _print_operations(service: Any, compiled: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    from openlam.actions import openapi

    console = Console(highlight=False)
    specs = openapi.operation_specs(service, compiled)
    base = service.base_url or compiled.get("base_url")
    console.print(f"[green]OpenAPI service {service.name}[/]: {openapi.describe(compiled)} at "
                  f"{base}, {len(specs)} operations:")
    table = Table("action", "risk", "method", "path")
    for spec, op in zip(specs, compiled["operations"], strict=True):
        table.add_row(spec.name, spec.risk.value, op["method"], op["path"])
    console.print(table)


def _pairs(items: list[str] | None) -> dict[str, str]:
    from openlam.errors import UserError

    pairs: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise UserError(f"--risk {item!r} is not OPERATION=TIER",
                            "e.g. --risk delete_contact=destructive")
        pairs[key.strip()] = value.strip()
    return pairs
