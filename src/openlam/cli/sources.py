"""What ``openlam mcp`` and ``openlam openapi`` share: both manage named sources of
actions (:mod:`openlam.actions.sources`) and add, list and remove them the same way."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from openlam.errors import UserError

if TYPE_CHECKING:
    from openlam.actions.sources import Sources


def check_new(sources: Sources[Any], settings: Any, name: str, *, replace: bool) -> None:
    """Refuse an unusable name, or one already configured unless ``--replace`` (a name
    taken by a source of another kind is refused: their actions would collide)."""
    from openlam.actions.sources import configured

    sources.check_name(name)
    taken = configured(settings).get(name)
    if taken is not None and taken[0].kind != sources.kind:
        raise UserError(f"{name} is already the name of an {taken[0].what} "
                        f"({taken[1].describe()})", "choose another name")
    if taken is not None and not replace:
        raise UserError(f"an {sources.what} named {name} is already configured "
                        f"({taken[1].describe()})",
                        f"pass --replace, or remove it first with `openlam {sources.kind} rm`")


def resolve_grants(settings: Any, given: list[str] | None, *, default: bool = True
                   ) -> list[str]:
    """Who may use a source's actions: the operator (unless ``default`` is False) plus
    every ``--grant``; agent ids and departments are checked against the catalog."""
    from openlam.actions.sources import DEFAULT_GRANTS, check_grant

    grants: list[str] = list(DEFAULT_GRANTS) if default else []
    for grant in given or []:
        grant = check_grant(grant)
        if grant not in grants:
            grants.append(grant)
    if any(g != "all" for g in grants):
        check_grantees(settings, grants)
    return grants


def check_grantees(settings: Any, grants: list[str]) -> None:
    """Refuse a grant naming an agent or department the workspace's catalog lacks."""
    from openlam.actions.grants import DEPARTMENT
    from openlam.org.loader import load_catalog

    catalog = load_catalog(settings.workspace)
    for grant in grants:
        if grant == "all":
            continue
        if grant.startswith(DEPARTMENT):
            catalog.department(grant[len(DEPARTMENT):])  # raises naming close matches
        else:
            catalog.agent(grant)


def print_access(source: Any, what: str) -> None:
    """Who may use the new source's actions, whether its hints are believed, and how to
    change either."""
    from openlam.actions.grants import describe_grants
    from openlam.cli.console import console, esc

    out = console()
    out.print(f"Agents that may use {esc(source.name)}.*: "
              f"[bold]{esc(describe_grants(source.grants))}[/] — change with `openlam actions "
              f"grant {esc(source.name)} AGENT|department:NAME|all` or `openlam actions revoke "
              f"{esc(source.name)} …`.")
    if not source.trusted:
        out.print(f"Risk: you have not vouched for this {what}, so what it says about its "
                  f"actions is not believed (anything that sends data is external, needing "
                  f"approval). Vouch for it with `openlam actions trust {esc(source.name)}`, "
                  "or set one action's tier with --risk NAME=TIER.")


def show(sources: Sources[Any], workspace: Path | None, columns: Sequence[str],
         row: Callable[[str, Any, dict[str, Any] | None], Sequence[str]], how_to_add: str
         ) -> None:
    """``openlam KIND list``: a table row per configured source, made by ``row`` from its
    name, configuration and cache (None when nothing is cached yet)."""
    from rich.table import Table

    from openlam.cli.console import console
    from openlam.config import load_settings

    settings = load_settings(workspace)
    found = sources.load(settings)
    out = console()
    if not found:
        out.print(f"No {sources.what}s. Add one: {how_to_add}")
        return
    table = Table(*columns)
    for name, config in found.items():
        table.add_row(*row(name, config, sources.read_cache(settings, name)))
    out.print(table)


def remove(sources: Sources[Any], name: str, workspace: Path | None) -> None:
    """``openlam KIND rm NAME``: forget a source; its actions disappear."""
    from openlam.config import load_settings

    if not sources.remove(load_settings(workspace), name):
        raise UserError(f"no {sources.what} named {name}", f"see `openlam {sources.kind} list`")
    typer.echo(f"Removed {sources.what} {name}.")


def pairs(items: list[str] | None, option: str, *, shape: str = "KEY=VALUE",
          example: str = "NAME=VALUE", need_value: bool = False) -> dict[str, str]:
    """Repeated ``KEY=VALUE`` options as a dict (``--env X=`` may set an empty value)."""
    found: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or (need_value and not value.strip()):
            raise UserError(f"{option} {item!r} is not {shape}", f"e.g. {option} {example}")
        found[key.strip()] = value.strip()
    return found
