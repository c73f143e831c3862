"""The largest request body the server takes: 10 MiB.

FastAPI reads and parses a JSON body before a route's dependencies check who is asking,
so without a limit anyone who can reach the port could make the server hold any amount
of memory (a 200 MB body to ``POST /api/v1/goals`` took 720 MB before its 422). A body
whose Content-Length is over the limit is refused with 413 before a byte of it is read;
a body sent without one (chunked) is refused as soon as it grows past it.

(FastAPI's own ``max_body_size`` needs a newer FastAPI than the one Flower pins for the
``federated`` extra, so the limit is this middleware.)
"""

from __future__ import annotations

from http import HTTPStatus

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from openlam.actions.httpkit import header_count

MAX_REQUEST_BYTES = 10 * 1024 * 1024


class BodyLimit:
    def __init__(self, app: ASGIApp, limit: int = MAX_REQUEST_BYTES) -> None:
        self.app = app
        self.limit = limit
        self.detail = (
            f"the request body is over {limit} bytes, the most this server takes; "
            "send less (a goal is at most 20000 characters)"
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = header_count(dict(scope["headers"]).get(b"content-length"))
        if declared is not None and declared > self.limit:
            from openlam.server.problems import problem_response

            response = problem_response(413, HTTPStatus(413).phrase, self.detail)
            await response(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.limit:  # the app's error handlers answer it
                raise HTTPException(413, self.detail)
            return message

        await self.app(scope, counted, send)
