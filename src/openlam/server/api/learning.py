"""``/api/v1/learning``: what the workforce has learned — playbooks (replayed plans),
lessons from people, each action's reliability (the same store as ``openlam learn``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from openlam.server.api.common import PREFIX, Viewer, blocking, settings
from openlam.server.auth import Principal

router = APIRouter(prefix=PREFIX, tags=["learning"])


def _store(request: Request) -> Any:
    from openlam.learning.store import LearningStore

    return LearningStore(settings(request).app_database_url)


@router.get("/learning/playbooks")
async def playbooks(request: Request, _principal: Principal = Viewer) -> dict[str, Any]:
    """Learned playbooks: goal shape, parameters, steps, provenance and record;
    ``demoted`` ones are no longer replayed."""
    from openlam.learning.store import DEMOTE_AFTER

    rows = await blocking(_store(request).playbooks)
    return {"playbooks": [{**vars(p), "demoted": p.failing >= DEMOTE_AFTER} for p in rows]}


@router.get("/learning/lessons")
async def lessons(
    request: Request,
    agent: Annotated[str | None, Query(max_length=128)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    _principal: Principal = Viewer,
) -> dict[str, Any]:
    """Lessons from denied or edited approvals and answered questions."""
    return {"lessons": await blocking(_store(request).lessons, agent, limit)}


@router.get("/learning/tools")
async def tools(request: Request, _principal: Principal = Viewer) -> dict[str, Any]:
    """Reliability per action: calls, success rate, latency percentiles, errors."""
    rows = await blocking(_store(request).tool_stats)
    return {"tools": [{k: v for k, v in r.items() if k != "latencies"} for r in rows]}
