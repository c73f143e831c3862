"""``POST /hooks/{name}``: webhook triggers, as on a worker's ``--port``. A webhook is
authenticated by its trigger's own secret (``X-OpenLAM-Token`` or a bearer token), not
by an API token: the sender is another system, given only that secret."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from openlam.runtime.worker import fire_webhook
from openlam.server.problems import Problem

router = APIRouter(tags=["webhooks"])


@router.post(
    "/hooks/{name}",
    status_code=202,
    responses={
        202: {"description": "The trigger's goal was queued: its run id."},
        401: {"description": "Missing or wrong trigger secret."},
        404: {"description": "No webhook trigger of that name."},
    },
)
async def webhook(name: str, request: Request) -> Any:
    """Start the goal of webhook trigger ``name`` with the request body as its
    (untrusted) context. The same event delivered twice starts one run."""
    worker = request.app.state.worker
    if worker is None or worker.rt is None:
        raise Problem(
            503,
            "No worker here",
            "this server runs with --no-worker: send "
            "webhooks to an `openlam worker --port` instead",
        )
    # at most 10 MiB reach here (server.body_limit); webhook_event refuses more than
    # MAX_PAYLOAD with 413
    body = await request.body()
    code, answer = await fire_webhook(worker.rt, name, dict(request.headers), body)
    if code >= 400:
        raise Problem(code, "Webhook refused", str(answer.get("error", "")))
    return JSONResponse(answer, status_code=code)
