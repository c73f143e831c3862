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
    """Refuse an unusable name, or one already configured unless ``--replace``."""
    sources.check_name(name)
    existing = sources.load(settings)
    if name in existing and not replace:
        raise UserError(f"an {sources.what} named {name} is already configured "
                        f"({existing[name].describe()})",
                        f"pass --replace, or remove it first with `openlam {sources.kind} rm`")


def show(sources: Sources[Any], workspace: Path | None, columns: Sequence[str],
         row: Callable[[str, Any, dict[str, Any] | None], Sequence[str]], how_to_add: str
         ) -> None:
    """``openlam KIND list``: a table row per configured source, made by ``row`` from its
    name, configuration and cache (None when nothing is cached yet)."""
    from rich.console import Console
    from rich.table import Table

    from openlam.config import load_settings

    settings = load_settings(workspace)
    configured = sources.load(settings)
    console = Console(highlight=False)
    if not configured:
        console.print(f"No {sources.what}s. Add one: {how_to_add}")
        return
    table = Table(*columns)
    for name, config in configured.items():
        table.add_row(*row(name, config, sources.read_cache(settings, name)))
    console.print(table)


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
