"""``POST /api/v1/goals``: queue a goal for the workers; the run id comes back at once."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from openlam.config import MAX_PRIORITY
from openlam.server.api.common import PREFIX, Operator, workforce
from openlam.server.auth import Principal

router = APIRouter(prefix=PREFIX, tags=["goals"])


class Goal(BaseModel):
    goal: str = Field(min_length=1, max_length=20_000, description="What to get done.")
    agent: str | None = Field(
        default=None, max_length=128, description="Catalog agent id to run it."
    )
    department: str | None = Field(
        default=None, max_length=128, description="Department whose best agent takes it."
    )
    route: bool = Field(
        default=False,
        description="Let the chief of staff pick across the "
        "organisation (may ask the model once, now).",
    )
    priority: int | None = Field(
        default=None,
        ge=1,
        le=MAX_PRIORITY,
        description="1 is the most urgent; unset runs after prioritised ones.",
    )
    deadline: str | None = Field(
        default=None, max_length=32, description='No step starts after this long, e.g. "10m".'
    )
    model: str | None = Field(default=None, max_length=256, description="PROVIDER:NAME.")


class Queued(BaseModel):
    run_id: str
    agent: str
    status: str = "queued"
    events: str = Field(description="Where to follow it (server-sent events).")
    run: str = Field(description="Where to read it.")


@router.post("/goals", status_code=202, response_model=Queued)
async def submit(
    body: Goal, request: Request, response: Response, principal: Principal = Operator
) -> Any:
    """Queue a goal; a worker (this server's own, or an ``openlam worker``) runs it."""
    del principal
    wf = workforce(request)
    queued = await wf.submit(
        body.goal,
        agent=body.agent,
        department=body.department,
        route=body.route,
        priority=body.priority,
        deadline=body.deadline,
        model=body.model,
    )
    run_path = f"{PREFIX}/runs/{queued.run_id}"
    response.headers["Location"] = run_path
    return Queued(
        run_id=queued.run_id,
        agent=queued.agent.id,
        events=f"{run_path}/events",
        run=run_path,
    )
