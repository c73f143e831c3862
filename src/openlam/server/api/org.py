"""``/api/v1/agents`` and ``/api/v1/departments``: the society of agents — who they
are, whom they report to, what each may do (the same data as ``openlam agents``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from openlam.org import views
from openlam.server.api.common import PREFIX, Viewer, blocking, settings
from openlam.server.auth import Principal

router = APIRouter(prefix=PREFIX, tags=["agents"])


def _catalog(request: Request) -> Any:
    from openlam.org.loader import load_catalog

    return load_catalog(settings(request).workspace)


@router.get("/agents")
async def list_agents(
    request: Request,
    department: Annotated[
        str | None, Query(max_length=128, description="Only this department (id or name).")
    ] = None,
    _principal: Principal = Viewer,
) -> dict[str, Any]:
    """Every agent (or a department's), the chief executive's department first."""

    def load() -> dict[str, Any]:
        catalog = _catalog(request)
        ids = (
            [catalog.department(department).id]
            if department
            else views.ordered_departments(catalog)
        )
        return {
            "agents": [views.agent_json(catalog, a) for d in ids for a in catalog.members(d)],
            "warnings": list(catalog.load_errors),
        }

    return await blocking(load)


@router.get("/agents/{agent_id}")
async def show_agent(
    agent_id: str, request: Request, _principal: Principal = Viewer
) -> dict[str, Any]:
    """One agent: role, instructions, reporting line, budget, and each permitted
    pattern with the installed actions it matches."""
    from openlam.actions.registry import load_plugins

    def load() -> dict[str, Any]:
        catalog = _catalog(request)
        agent = catalog.agent(agent_id)
        installed = [s.name for s in load_plugins(settings=settings(request))]
        return {
            **views.agent_json(catalog, agent),
            "chain": [a.id for a in catalog.chain(agent.id)[1:]],
            "permitted": views.permitted_actions(catalog, agent.id, installed),
        }

    return await blocking(load)


@router.get("/departments")
async def departments(request: Request, _principal: Principal = Viewer) -> dict[str, Any]:
    """The departments: head, number of agents, what each one does."""

    def load() -> dict[str, Any]:
        catalog = _catalog(request)
        return {
            "departments": [
                views.department_json(catalog, d) for d in views.ordered_departments(catalog)
            ]
        }

    return await blocking(load)
