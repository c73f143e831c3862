"""``/api/v1/audit``: verify the hash-chained log, export it, read a run's records;
``/api/v1/gaps``: what the workforce could not do, and why."""

from __future__ import annotations

import io
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from openlam.governance import api as governance
from openlam.server.api.common import PREFIX, Admin, Viewer, blocking, settings
from openlam.server.auth import Principal

router = APIRouter(prefix=PREFIX, tags=["audit"])


@router.get("/audit/verify")
async def verify(
    request: Request,
    expect: Annotated[
        str | None,
        Query(
            max_length=200,
            pattern=r"^\d+:[0-9a-f]{64}$",
            description="SEQ:HASH kept elsewhere (openlam audit head); default: "
            "the configured anchor file's last head.",
        ),
    ] = None,
    _principal: Principal = Viewer,
) -> dict[str, Any]:
    """Walk the chain: intact, or the first record that was tampered with."""
    result = await blocking(governance.verify_audit, settings(request), expect)
    return {**asdict(result), "message": str(result)}


@router.get("/audit/export", responses={200: {"content": {"application/x-ndjson": {}}}})
async def export(request: Request, _principal: Principal = Admin) -> Response:
    """Every record as JSON lines (with hashes, for verification elsewhere)."""
    out = io.StringIO()
    await blocking(governance.export_audit, settings(request), out)
    return Response(
        out.getvalue(),
        media_type="application/x-ndjson",
        headers={"Content-Disposition": 'attachment; filename="audit.jsonl"'},
    )


@router.get("/audit/records")
async def records(
    request: Request,
    run_id: Annotated[str, Query(min_length=1, max_length=255)],
    kind: Annotated[str | None, Query(max_length=40)] = None,
    _principal: Principal = Viewer,
) -> dict[str, Any]:
    """One run's audit records, in order: decisions, approvals, actions, results."""
    log = governance.audit_log(settings(request))
    rows = await blocking(log.records, run_id=run_id, kind=kind)
    return {"records": rows}


@router.get("/gaps")
async def gaps(
    request: Request,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    _principal: Principal = Viewer,
) -> dict[str, Any]:
    """Capability gaps, most frequent first: what was missing, why, how often."""
    rows = await blocking(governance.list_gaps, settings(request), limit)
    return {"gaps": [asdict(g) for g in rows]}
