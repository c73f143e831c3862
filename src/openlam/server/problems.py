"""Every error answer is RFC 9457 problem JSON (``application/problem+json``):
``type``, ``title``, ``status``, ``detail`` — plus ``errors`` for invalid input —
whether it comes from OpenLAM (a :class:`~openlam.errors.UserError` names the problem
and its fix), from request validation (422), or from routing (404, 405)."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from openlam.errors import UserError

MEDIA_TYPE = "application/problem+json"
log = logging.getLogger("openlam.server")


class Problem(Exception):
    """An error answer: raise it from a handler or a dependency."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str = "",
        *,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(f"{status} {title}: {detail}")
        self.status, self.title, self.detail = status, title, detail
        self.headers = headers
        self.extra = extra


def problem_response(
    status: int,
    title: str,
    detail: str = "",
    *,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    body.update(extra)
    return JSONResponse(
        jsonable_encoder(body), status_code=status, headers=headers, media_type=MEDIA_TYPE
    )


def not_found(what: str, hint: str = "") -> Problem:
    return Problem(404, "Not found", f"{what}" + (f"; {hint}" if hint else ""))


def from_user_error(exc: UserError) -> Problem:
    """A UserError as a problem: 404 when it says something does not exist, 409 when
    the thing is in the wrong state for it, else 400."""
    message = str(exc.args[0]) if exc.args else str(exc)
    lowered = message.lower()
    if lowered.startswith(
        (
            "no run",
            "no approval",
            "no schedule",
            "no trigger",
            "no agent",
            "no token",
            "no user",
            "no live token",
            "unknown agent",
            "unknown department",
            "no department",
        )
    ):
        status = 404
    elif any(
        word in lowered
        for word in ("already", "is being executed", "has ended", "not pending", "exists already")
    ):
        status = 409
    elif "does not have the approver role" in lowered or "needs the admin role" in lowered:
        status = 403
    else:
        status = 400
    problem = Problem(status, HTTPStatus(status).phrase, message)
    if exc.hint:
        problem.extra["fix"] = exc.hint
    return problem


async def _access_refused(request: Request) -> Problem | None:
    """The 401/403 the request's route would answer: FastAPI parses a JSON body before
    it runs the route's dependencies, so a malformed body would otherwise tell an
    unauthenticated caller 422 instead of 401."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    for sub in getattr(dependant, "dependencies", []):
        if getattr(sub.call, "guards_access", False):
            try:
                await sub.call(request)
            except Problem as problem:
                return problem
    return None


def install(app: FastAPI) -> None:
    """Make every error answer of ``app`` problem JSON."""

    @app.exception_handler(Problem)
    async def _problem(_request: Request, exc: Problem) -> JSONResponse:
        return problem_response(exc.status, exc.title, exc.detail, headers=exc.headers, **exc.extra)

    @app.exception_handler(UserError)
    async def _user_error(_request: Request, exc: UserError) -> JSONResponse:
        problem = from_user_error(exc)
        return problem_response(problem.status, problem.title, problem.detail, **problem.extra)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code in (400, 413, 415, 422):  # a body that could not be parsed
            refused = await _access_refused(request)
            if refused is not None:
                return problem_response(
                    refused.status,
                    refused.title,
                    refused.detail,
                    headers=refused.headers,
                    **refused.extra,
                )
        detail = exc.detail if isinstance(exc.detail, str) else ""
        phrase = HTTPStatus(exc.status_code).phrase
        return problem_response(
            exc.status_code,
            phrase,
            "" if detail == phrase else detail,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        refused = await _access_refused(request)
        if refused is not None:  # who may ask comes before what was asked
            return problem_response(
                refused.status,
                refused.title,
                refused.detail,
                headers=refused.headers,
                **refused.extra,
            )
        errors = [
            {
                "where": ".".join(str(p) for p in e.get("loc", ())),
                "problem": e.get("msg"),
                "type": e.get("type"),
            }
            for e in exc.errors()
        ]
        return problem_response(
            422,
            "Invalid request",
            "; ".join(f"{e['where']}: {e['problem']}" for e in errors),
            errors=errors,
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("%s %s failed", request.method, request.url.path)
        return problem_response(
            500,
            "Internal Server Error",
            f"{type(exc).__name__}: this is a bug in OpenLAM; the server log has the details",
        )
