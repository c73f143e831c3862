"""What ``openlam mcp`` and ``openlam openapi`` share: both manage named sources of
actions (:mod:`openlam.actions.sources`) and add, list and remove them the same way."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from openlam.actions.adding import check_grantees, check_new, resolve_grants
from openlam.errors import UserError

__all__ = [
    "check_grantees",
    "check_new",
    "pairs",
    "print_access",
    "remove",
    "resolve_grants",
    "show",
]

if TYPE_CHECKING:
    from openlam.actions.sources import Sources
    from openlam.cli.console import Column


def print_access(source: Any, what: str) -> None:
    """Who may use the new source's actions, whether its hints are believed, and how to
    change either."""
    from openlam.actions.grants import describe_grants
    from openlam.cli.console import console, esc

    out = console()
    out.print(
        f"Agents that may use {esc(source.name)}.*: "
        f"[bold]{esc(describe_grants(source.grants))}[/] — change with `openlam actions "
        f"grant {esc(source.name)} AGENT|department:NAME|all` or `openlam actions revoke "
        f"{esc(source.name)} …`."
    )
    if not source.trusted:
        out.print(
            f"Risk: you have not vouched for this {what}, so what it says about its "
            f"actions is not believed (anything that sends data is external, needing "
            f"approval). Vouch for it with `openlam actions trust {esc(source.name)}`, "
            "or set one action's tier with --risk NAME=TIER."
        )


def show(
    sources: Sources[Any],
    workspace: Path | None,
    columns: Sequence[Column | str],
    row: Callable[[str, Any, dict[str, Any] | None], Sequence[str]],
    how_to_add: str,
) -> None:
    """``openlam KIND list``: a table row per configured source, made by ``row`` from its
    name, configuration and cache (None when nothing is cached yet) — plain text."""
    from openlam.cli.console import console, print_table
    from openlam.config import load_settings

    settings = load_settings(workspace)
    found = sources.load(settings)
    out = console()
    if not found:
        out.print(f"No {sources.what}s. Add one: {how_to_add}")
        return
    print_table(
        out,
        columns,
        (row(name, config, sources.read_cache(settings, name)) for name, config in found.items()),
    )


def remove(sources: Sources[Any], name: str, workspace: Path | None) -> None:
    """``openlam KIND rm NAME``: forget a source; its actions disappear."""
    from openlam.config import load_settings

    if not sources.remove(load_settings(workspace), name):
        raise UserError(f"no {sources.what} named {name}", f"see `openlam {sources.kind} list`")
    typer.echo(f"Removed {sources.what} {name}.")


def pairs(
    items: list[str] | None,
    option: str,
    *,
    shape: str = "KEY=VALUE",
    example: str = "NAME=VALUE",
    need_value: bool = False,
) -> dict[str, str]:
    """Repeated ``KEY=VALUE`` options as a dict (``--env X=`` may set an empty value)."""
    found: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or (need_value and not value.strip()):
            raise UserError(f"{option} {item!r} is not {shape}", f"e.g. {option} {example}")
        found[key.strip()] = value.strip()
    return found
