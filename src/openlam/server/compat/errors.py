"""Errors in the shape each provider's clients understand.

The rest of the server answers errors as RFC 9457 problem JSON; an OpenAI client expects
``{"error": {"message", "type", "code", "param"}}`` and an Ollama client ``{"error":
"..."}``. A compat router's routes use a route class that turns every error raised in
their dependencies (authentication) or handlers — and invalid request bodies — into
the provider's shape, keeping the status code and headers.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from http import HTTPStatus
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from openlam.errors import UserError
from openlam.server.compat.work import UnknownModel
from openlam.server.problems import Problem, from_user_error


def _problem_of(exc: Exception) -> Problem | None:
    """The error as a Problem (status, title, detail), or None if it is not one we name."""
    if isinstance(exc, Problem):
        return exc
    if isinstance(exc, UnknownModel):
        return Problem(404, "Not found", str(exc.args[0]), fix=exc.hint)
    if isinstance(exc, UserError):
        return from_user_error(exc)
    if isinstance(exc, RequestValidationError):
        where = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors()
        )
        return Problem(400, "Invalid request", where)
    return None


def _message(problem: Problem) -> str:
    text = problem.detail or problem.title
    fix = problem.extra.get("fix")
    return f"{text} ({fix})" if fix else text


OPENAI_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    409: "invalid_request_error",
}
OPENAI_CODES = {401: "invalid_api_key", 403: "insufficient_permissions", 404: "model_not_found"}


def openai_body(problem: Problem) -> dict[str, Any]:
    return {
        "error": {
            "message": _message(problem),
            "type": OPENAI_TYPES.get(problem.status, "server_error"),
            "param": None,
            "code": OPENAI_CODES.get(problem.status),
        }
    }


def ollama_body(problem: Problem) -> dict[str, Any]:
    return {"error": _message(problem)}


def _route_class(body: Callable[[Problem], dict[str, Any]]) -> type[APIRoute]:
    class ProviderRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            inner = super().get_route_handler()

            async def handler(request: Request) -> Response:
                try:
                    return await inner(request)
                except Exception as exc:
                    problem = _problem_of(exc)
                    if problem is None:
                        raise  # a bug: the app's handler logs it and answers 500
                    return JSONResponse(
                        body(problem), status_code=problem.status, headers=problem.headers
                    )

            return handler

    return ProviderRoute


OpenAIRoute = _route_class(openai_body)
OllamaRoute = _route_class(ollama_body)


def stream_error(exc: Exception) -> Problem:
    """An error met after a streamed answer began (the status line is already sent)."""
    return _problem_of(exc) or Problem(
        500, HTTPStatus(500).phrase, f"{type(exc).__name__}: the server log has the details"
    )
