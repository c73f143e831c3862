"""``/api/v1/approvals``: steps waiting for a person's decision — list, show, approve,
deny, edit-and-approve. Deciding needs the approver role, and the workspace's approvers
per department are checked exactly as for ``openlam approvals`` (governance.api)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from openlam.governance import api as governance
from openlam.runtime.process import wake_waiting_run
from openlam.server.api.common import PREFIX, Approver, Viewer, blocking, settings
from openlam.server.auth import Principal

router = APIRouter(prefix=PREFIX, tags=["approvals"])
STATUSES = ("pending", "approved", "edited", "denied", "expired")


class Decision(BaseModel):
    comment: str = Field(default="", max_length=4000, description="Why (kept in the audit log).")


class Edit(Decision):
    args: dict[str, Any] = Field(
        description="Arguments to change, merged over the "
        "requested ones; checked against the "
        "action's input schema."
    )


def _json(approval: Any) -> dict[str, Any]:
    return asdict(approval)


@router.get("/approvals")
async def list_approvals(
    request: Request,
    status: Annotated[
        str | None,
        Query(pattern="^(" + "|".join(STATUSES) + ")$", description="Default: every status."),
    ] = None,
    run_id: Annotated[str | None, Query(max_length=255)] = None,
    _principal: Principal = Viewer,
) -> dict[str, Any]:
    """Approvals, oldest first (expired ones are marked expired as they are listed)."""
    rows = await blocking(
        governance.list_approvals, settings(request), status=status, run_id=run_id
    )
    return {"approvals": [_json(a) for a in rows]}


@router.get("/approvals/{approval_id}")
async def show_approval(
    approval_id: str, request: Request, _principal: Principal = Viewer
) -> dict[str, Any]:
    """One approval (a unique prefix of its id is enough)."""
    return _json(await blocking(governance.show_approval, settings(request), approval_id))


async def _decide(
    decide: Any, request: Request, approval_id: str, principal: Principal, body: Decision | None
) -> dict[str, Any]:
    """Approve or deny as the authenticated principal; the waiting run wakes at once."""
    return _json(
        await blocking(
            decide,
            settings(request),
            approval_id,
            principal=principal.name,
            authenticated=True,
            on_decision=wake_waiting_run,
            comment=(body or Decision()).comment,
        )
    )


@router.post("/approvals/{approval_id}/approve")
async def approve(
    approval_id: str,
    request: Request,
    body: Decision | None = None,
    principal: Principal = Approver,
) -> dict[str, Any]:
    """Let the step run as requested; the waiting run continues."""
    return await _decide(governance.approve, request, approval_id, principal, body)


@router.post("/approvals/{approval_id}/deny")
async def deny(
    approval_id: str,
    request: Request,
    body: Decision | None = None,
    principal: Principal = Approver,
) -> dict[str, Any]:
    """Refuse the step; the run replans around it or ends blocked."""
    return await _decide(governance.deny, request, approval_id, principal, body)


@router.post("/approvals/{approval_id}/edit")
async def edit(
    approval_id: str, body: Edit, request: Request, principal: Principal = Approver
) -> dict[str, Any]:
    """Approve with changed arguments (the change is recorded)."""
    return _json(
        await blocking(
            governance.edit,
            settings(request),
            approval_id,
            body.args,
            principal=principal.name,
            authenticated=True,
            on_decision=wake_waiting_run,
            comment=body.comment,
        )
    )
