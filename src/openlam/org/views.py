"""The catalog as plain data: what ``openlam agents … --json`` prints and what the
server's ``/api/v1/agents`` and ``/api/v1/departments`` answer."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from openlam.org.loader import Catalog
    from openlam.org.model import Agent


def ordered_departments(catalog: Catalog) -> list[str]:
    """The chief executive's department first, then by name."""
    first = catalog.root.department
    rest = sorted(
        (d for d in catalog.departments if d != first),
        key=lambda d: catalog.departments[d].name.lower(),
    )
    return [first, *rest] if first in catalog.departments else rest


def agent_json(catalog: Catalog, agent: Agent) -> dict[str, Any]:
    """An agent with its reports, the file defining it and the sources granted to it."""
    data = agent.model_dump(mode="json")
    data["reports"] = [r.id for r in catalog.reports(agent.id)]
    data["source"] = catalog.source(agent.id)
    data["granted"] = [
        {"source": s.name, "kind": s.kind, "pattern": s.pattern} for s in catalog.granted(agent.id)
    ]
    return data


def department_json(catalog: Catalog, department: str) -> dict[str, Any]:
    head = catalog.head(department)
    return {
        **catalog.departments[department].model_dump(mode="json"),
        "head": head.id if head else None,
        "agents": len(catalog.members(department)),
    }


def permitted_actions(
    catalog: Catalog, agent_id: str, installed: Iterable[str]
) -> list[dict[str, Any]]:
    """Each permitted pattern of the agent, with the installed actions it matches."""
    names = list(installed)
    return [
        {"pattern": pattern, "actions": [n for n in names if fnmatch.fnmatchcase(n, pattern)]}
        for pattern in catalog.permitted_patterns(agent_id)
    ]
