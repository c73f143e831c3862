"""``GET /api/v1/health``: unauthenticated, for load balancers and container checks."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from openlam import __version__
from openlam.server.api.common import PREFIX

router = APIRouter(prefix=PREFIX, tags=["health"])


@router.get("/health")
async def health(request: Request) -> dict[str, Any]:
    """Whether the server is up, and whether it runs queued goals itself."""
    worker = getattr(request.app.state, "worker", None)
    rt = worker.rt if worker is not None else None
    return {
        "status": "draining" if rt is not None and rt.draining else "ok",
        "version": __version__,
        "worker": worker is not None,
        "executor": rt.executor_id if rt is not None else None,
        "steps_in_flight": rt.inflight if rt is not None else 0,
    }
