"""``/api/v1/schedules`` and ``/api/v1/triggers``: goals that start by themselves (the
same functions as ``openlam schedule`` and ``openlam trigger``)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from openlam.server.api.common import PREFIX, Admin, Viewer, blocking, settings, workforce
from openlam.server.auth import Principal

router = APIRouter(prefix=PREFIX, tags=["schedules"])


class NewSchedule(BaseModel):
    when: str = Field(
        min_length=1,
        max_length=200,
        description='"every weekday at 9:00", "every 15 minutes", or cron.',
    )
    goal: str = Field(min_length=1, max_length=20_000)
    name: str | None = Field(default=None, max_length=48)
    agent: str | None = Field(default=None, max_length=128)
    department: str | None = Field(default=None, max_length=128)
    catch_up: bool = Field(default=False, description="Run missed firings when a worker is back.")
    timezone: str | None = Field(default=None, max_length=64, description="IANA zone.")
    deadline: str | None = Field(default=None, max_length=32)


@router.get("/schedules")
async def list_schedules(request: Request, _principal: Principal = Viewer) -> dict[str, Any]:
    """The schedules, with when each last fired."""
    from openlam.runtime import schedules

    return {"schedules": await blocking(schedules.list_all, settings(request))}


@router.post("/schedules", status_code=201)
async def add_schedule(
    body: NewSchedule, request: Request, _principal: Principal = Admin
) -> dict[str, Any]:
    """Run a goal on a schedule (a running worker fires it)."""
    from openlam.runtime import schedules

    return await blocking(
        schedules.add,
        settings(request),
        body.when,
        body.goal,
        name=body.name,
        agent=body.agent,
        department=body.department,
        catch_up=body.catch_up,
        timezone=body.timezone,
        deadline=body.deadline,
    )


@router.delete("/schedules/{name}", status_code=204)
async def remove_schedule(name: str, request: Request, _principal: Principal = Admin) -> None:
    """Remove a schedule (runs it started are kept)."""
    from openlam.runtime import schedules

    await blocking(schedules.remove, settings(request), name)


class NewTrigger(BaseModel):
    kind: Literal["webhook", "imap", "folder"]
    name: str = Field(max_length=48, description="Used in URLs: lowercase, digits, - and _.")
    goal: str = Field(
        min_length=1,
        max_length=20_000,
        description="The event's content is handed to it as untrusted context.",
    )
    agent: str | None = Field(default=None, max_length=128)
    department: str | None = Field(default=None, max_length=128)
    path: str = Field(default="inbox", max_length=1024, description="folder: the folder to watch.")
    mailbox: str = Field(default="INBOX", max_length=256, description="imap: the mailbox to watch.")
    poll: float = Field(default=10.0, ge=0.1, le=86_400, description="Seconds between polls.")
    secret: str | None = Field(
        default=None, max_length=256, description="webhook: the shared secret (default: a new one)."
    )


def _triggers(request: Request) -> Any:
    from openlam.runtime.triggers import Triggers

    return Triggers(workforce(request).store.engine)


@router.get("/triggers")
async def list_triggers(request: Request, _principal: Principal = Viewer) -> dict[str, Any]:
    """The triggers (webhook secrets are never shown)."""
    from openlam.runtime.triggers import describe

    found = await blocking(_triggers(request).list)
    return {"triggers": [describe(t) for t in found]}


@router.post("/triggers", status_code=201)
async def add_trigger(
    body: NewTrigger, request: Request, _principal: Principal = Admin
) -> dict[str, Any]:
    """Start a goal whenever an event arrives. A webhook's secret is answered once."""
    from openlam.runtime.triggers import describe, new_trigger

    trigger = new_trigger(
        body.kind,
        body.name,
        body.goal,
        agent=body.agent,
        department=body.department,
        path=body.path,
        mailbox=body.mailbox,
        poll=body.poll,
        secret=body.secret,
    )
    token = await blocking(_triggers(request).add, trigger)
    answer = describe(trigger)
    if token is not None:
        answer["secret"] = token
        answer["url"] = f"/hooks/{trigger.name}"
    return answer


@router.delete("/triggers/{name}", status_code=204)
async def remove_trigger(name: str, request: Request, _principal: Principal = Admin) -> None:
    """Remove a trigger."""
    await blocking(_triggers(request).remove, name)
