"""``/api/v1/session``: log in with a token or a user's password (the dashboard's
session cookie), see who one is, log out."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from openlam.server import auth
from openlam.server.api.common import PREFIX, Viewer, blocking
from openlam.server.auth import Principal
from openlam.server.problems import Problem

router = APIRouter(prefix=PREFIX, tags=["session"])


class Login(BaseModel):
    token: str | None = Field(default=None, description="An API token (openlam tokens create).")
    user: str | None = Field(default=None, description="A user name (openlam users add).")
    password: str | None = None


@router.post("/session", status_code=201)
async def login(body: Login, request: Request, response: Response) -> dict[str, Any]:
    """Start a browser session: sets the signed HttpOnly cookie; answers the CSRF token
    to send with every change made through the cookie (X-CSRF-Token)."""
    store = request.app.state.credentials
    principal: Principal | None = None
    if body.token:
        principal = await blocking(auth.authenticate_token, store, body.token)
    elif body.user and body.password is not None:
        principal = await blocking(auth.authenticate_password, store, body.user, body.password)
    else:
        raise Problem(422, "Invalid request", "give a token, or a user and a password")
    if principal is None:
        raise Problem(401, "Wrong credentials", "check the token, or the user and password")
    csrf = auth.start_session(response, principal)
    return {"name": principal.name, "role": principal.role.name, "csrf_token": csrf}


@router.get("/session")
async def whoami(request: Request, principal: Principal = Viewer) -> dict[str, Any]:
    """Who the request is made as, and its session's CSRF token (if any)."""
    return {
        "name": principal.name,
        "role": principal.role.name,
        "via": principal.via.partition(":")[0],
        "csrf_token": auth.csrf_token(request),
    }


@router.delete("/session", status_code=204)
async def logout(response: Response, _principal: Principal = Viewer) -> Response:
    """End the browser session (the cookie is cleared)."""
    auth.end_session(response)
    response.status_code = 204
    return response
