"""``/api/v1/runs``: list (filters, paging), show as a tree, cancel, resume, and follow
live (server-sent events: the typed events of openlam.loop.events as JSON)."""

from __future__ import annotations

import datetime
import json
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from sse_starlette import EventSourceResponse

from openlam.server.api.common import PREFIX, Operator, Viewer, blocking, settings, workforce
from openlam.server.auth import Principal
from openlam.server.problems import not_found

router = APIRouter(prefix=PREFIX, tags=["runs"])
STATUSES = (
    "queued",
    "running",
    "interrupted",
    "completed",
    "partial",
    "blocked",
    "failed",
    "cancelled",
)
MAX_TREE = 500  # runs shown in one delegation tree at most


class RunSummary(BaseModel):
    id: str
    parent_id: str | None
    goal: str
    agent: str
    status: str
    summary: str
    created_at: float
    updated_at: float


class RunPage(BaseModel):
    runs: list[RunSummary]
    limit: int
    offset: int
    next_offset: int | None = Field(
        description="Give as offset for the next page; null on the last page."
    )


def _since(value: str | None) -> float | None:
    """Epoch seconds, or an ISO 8601 time."""
    from openlam.server.problems import Problem

    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        moment = datetime.datetime.fromisoformat(value)
    except ValueError:
        raise Problem(
            422,
            "Invalid request",
            f"since={value!r} is neither epoch seconds nor an ISO 8601 time",
            errors=[{"where": "query.since", "problem": "not a time"}],
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.timestamp()


@router.get("/runs", response_model=RunPage)
async def list_runs(
    request: Request,
    status: Annotated[
        str | None,
        Query(
            description=f"One of: {', '.join(STATUSES)}.", pattern="^(" + "|".join(STATUSES) + ")$"
        ),
    ] = None,
    agent: Annotated[str | None, Query(max_length=128)] = None,
    since: Annotated[
        str | None,
        Query(max_length=64, description="Started at or after: epoch seconds or ISO 8601."),
    ] = None,
    top_level: Annotated[bool, Query(description="Only runs no other run delegated.")] = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    _principal: Principal = Viewer,
) -> Any:
    """Runs, newest first."""
    store = workforce(request).store
    rows = await blocking(
        store.list_runs,
        limit=limit + 1,
        status=status,
        agent=agent,
        since=_since(since),
        offset=offset,
        top_level=top_level,
    )
    return {
        "runs": rows[:limit],
        "limit": limit,
        "offset": offset,
        "next_offset": offset + limit if len(rows) > limit else None,
    }


def _tree(store: Any, run: dict[str, Any], budget: list[int]) -> dict[str, Any]:
    """The run with each child replaced by its own full tree."""
    children = []
    for child in run.get("children", []):
        budget[0] -= 1
        full = store.get_run(child["id"]) if budget[0] > 0 else None
        children.append(_tree(store, full, budget) if full is not None else child)
    return {**run, "children": children}


def _load_tree(store: Any, run_id: str) -> dict[str, Any]:
    run = store.get_run(run_id)
    if run is None:
        raise not_found(f"no run {run_id!r} in this workspace", "list runs with GET /api/v1/runs")
    return _tree(store, run, [MAX_TREE])


@router.get("/runs/{run_id}")
async def show_run(run_id: str, request: Request, _principal: Principal = Viewer) -> dict[str, Any]:
    """A run (a unique prefix of its id is enough): goal, status, steps with results,
    the outcome (deliverables, gaps, usage) once it ended, and its delegation tree
    (``children``, each a run of the same shape)."""
    return await blocking(_load_tree, workforce(request).store, run_id)


class Cancel(BaseModel):
    reason: str = Field(default="cancelled", max_length=2000)


@router.post("/runs/{run_id}/cancel", status_code=202)
async def cancel_run(
    run_id: str, request: Request, body: Cancel | None = None, principal: Principal = Operator
) -> dict[str, str]:
    """Stop a run and its delegated children: no further step starts; it ends cancelled."""
    from openlam.runtime import admin

    message = await blocking(
        admin.cancel,
        settings(request),
        workforce(request).store,
        run_id,
        by=principal.name,
        reason=(body or Cancel()).reason,
    )
    return {"run_id": run_id, "detail": message}


@router.post("/runs/{run_id}/resume", status_code=202)
async def resume_run(
    run_id: str, request: Request, _principal: Principal = Operator
) -> dict[str, str]:
    """Hand an interrupted run back to the workers; it finishes from its last finished
    step without repeating an action."""
    from openlam.runtime import admin

    wf = workforce(request)
    worker = request.app.state.worker  # its runtime takes over a dead process's run now
    message = await blocking(
        admin.resume, settings(request), wf.store, run_id, worker.rt if worker is not None else None
    )
    return {"run_id": run_id, "detail": message}


class Answer(BaseModel):
    step: str = Field(min_length=1, max_length=64, description="The asking step's id.")
    text: str = Field(min_length=1, max_length=20_000)


@router.post("/runs/{run_id}/answer")
async def answer_run(
    run_id: str, body: Answer, request: Request, principal: Principal = Operator
) -> dict[str, str]:
    """Answer a question the run asked (``ask_human`` / ``human.ask``: a ``question``
    event); the run continues."""
    from openlam.runtime.human import answer_question

    answered = await blocking(
        answer_question, settings(request), run_id, body.step, body.text, principal.name
    )
    return {"run_id": answered, "step": body.step, "detail": "answered; the run continues"}


@router.get(
    "/runs/{run_id}/events",
    response_class=EventSourceResponse,
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": "Server-sent events: `event` is the kind "
            "(run.started, plan, step.started, "
            "step.finished, …, run.finished), `data` the "
            "event as JSON. The stream ends after the "
            "run's run.finished.",
        }
    },
)
async def run_events(
    run_id: str, request: Request, _principal: Principal = Viewer
) -> EventSourceResponse:
    """Follow a run live, from its first event (works for runs any process executes)."""
    from openlam.server.events import follow

    wf = workforce(request)
    run = await blocking(wf.store.get_run, run_id)
    if run is None:
        raise not_found(f"no run {run_id!r} in this workspace", "list runs with GET /api/v1/runs")

    async def stream():
        n = 0
        async for event in follow(wf, run["id"]):
            n += 1
            yield {
                "event": event.kind,
                "id": str(n),
                "data": json.dumps(event.model_dump(mode="json"), ensure_ascii=False),
            }

    return EventSourceResponse(stream(), ping=request.app.state.sse_ping)
