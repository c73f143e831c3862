"""Every kind of configurable action source (MCP servers, OpenAPI services) and the
sources configured in a workspace. Apart from :mod:`openlam.actions.sources`, which
each kind builds on: the kinds import that module, this one imports the kinds."""

from __future__ import annotations

import difflib
from typing import Any

from openlam.actions.mcp.config import SERVERS
from openlam.actions.openapi.config import SERVICES
from openlam.actions.sources import SourceConfig, Sources
from openlam.errors import UserError


def all_kinds() -> tuple[Sources[Any], ...]:
    """Every kind of configurable source."""
    return (SERVERS, SERVICES)


def configured(settings: Any) -> dict[str, tuple[Sources[Any], SourceConfig]]:
    """Every configured source of every kind, by name."""
    return {
        name: (kind, config) for kind in all_kinds() for name, config in kind.load(settings).items()
    }


def find(settings: Any, name: str) -> tuple[Sources[Any], SourceConfig]:
    """The source called ``name`` (``git``, or ``mcp:git`` naming its kind too)."""
    kind_name, _, bare = name.rpartition(":")
    found = configured(settings)
    hit = found.get(bare)
    if hit is None or (kind_name and hit[0].kind != kind_name):
        close = difflib.get_close_matches(bare, list(found), n=3)
        raise UserError(
            f"no MCP server or OpenAPI service named {bare}",
            f"did you mean {', '.join(close)}?"
            if close
            else f"configured: {', '.join(found) or 'none'} (see `openlam mcp list`, "
            "`openlam openapi list`)",
        )
    return hit
