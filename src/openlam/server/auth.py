"""Who is calling, and may they: API tokens, the dashboard's session cookie, roles, CSRF.

Roles are ordered — viewer < operator < approver < admin — and each endpoint requires
one (``Depends(require(Role.operator))``). A request proves who it is with
``Authorization: Bearer <token>`` or with the session cookie the dashboard gets at
login (signed, HttpOnly, SameSite=Lax); a cookie-authenticated request that changes
something must also carry the session's CSRF token (header ``X-CSRF-Token`` or form
field ``csrf_token``), which a page of another site cannot read.

With no token and no user configured, a server bound to the loopback address serves
its machine's user as admin (the single-user laptop install); ``openlam serve``
refuses any other address until a token or a user exists, and the first token created
turns authentication on.
"""

from __future__ import annotations

import asyncio
import base64
import getpass
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any
from urllib.parse import urlsplit

from fastapi import Request, Response

from openlam.server.credentials import Credentials
from openlam.server.problems import Problem

SESSION_COOKIE = "openlam_session"
SESSION_SECONDS = 12 * 3600
CACHE_SECONDS = 5.0  # a revoked token or removed user is refused within this long
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


class Role(IntEnum):
    viewer = 1
    operator = 2
    approver = 3
    admin = 4


@dataclass(frozen=True)
class Principal:
    name: str
    role: Role
    via: str = ""  # "token:ID", "user:NAME" or "local": what proved it


class _State:
    """This process's credentials store and session key (one workspace per process)."""

    store: Credentials | None = None
    key: bytes = b""
    secure_cookies: bool = False
    cache: dict[str, tuple[float, Any]] = {}


def configure(store: Credentials, *, secure_cookies: bool = False) -> None:
    """Called by ``create_app``: where tokens and users are, and the session key."""
    _State.store = store
    _State.key = store.session_key()
    _State.secure_cookies = secure_cookies
    _State.cache = {}


async def _remembered(key: str, load: Callable[[], Any]) -> Any:
    """``load()`` (run on a thread: it reads the database), remembered for
    CACHE_SECONDS: a request authenticates without a query most of the time."""
    now = time.monotonic()
    hit = _State.cache.get(key)
    if hit is not None and hit[0] > now:
        return hit[1]
    value = await asyncio.to_thread(load)
    if len(_State.cache) > 10_000:  # random tokens must not grow it without bound
        _State.cache.clear()
    _State.cache[key] = (now + CACHE_SECONDS, value)
    return value


# -- proving who one is --------------------------------------------------------------


def authenticate_token(store: Credentials, token: str) -> Principal | None:
    """The principal a bearer token stands for, or None (unknown or revoked)."""
    info = store.find_token(token)
    if info is None:
        return None
    if info.last_used_at is None or time.time() - info.last_used_at > 60:
        store.touch(info.id)  # at most once a minute: no write per request
    return Principal(info.name, Role[info.role], f"token:{info.id}")


def authenticate_password(store: Credentials, user: str, password: str) -> Principal | None:
    """The principal of a user whose password this is, or None."""
    role = store.check_user(user, password)
    return None if role is None else Principal(user, Role[role], f"user:{user}")


def _sign(payload: bytes) -> str:
    return _b64(hmac.new(_State.key, payload, hashlib.sha256).digest())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def start_session(response: Response, principal: Principal) -> str:
    """Log ``principal`` in: set the signed session cookie on ``response``. Returns the
    new session's CSRF token (the next requests get it from :func:`csrf_token`)."""
    csrf = secrets.token_urlsafe(24)
    payload = json.dumps(
        {
            "via": principal.via,
            "name": principal.name,
            "exp": int(time.time() + SESSION_SECONDS),
            "csrf": csrf,
        }
    ).encode()
    response.set_cookie(
        SESSION_COOKIE,
        f"{_b64(payload)}.{_sign(payload)}",
        max_age=SESSION_SECONDS,
        httponly=True,
        samesite="lax",
        secure=_State.secure_cookies,
        path="/",
    )
    return csrf


def end_session(response: Response) -> None:
    response.delete_cookie(
        SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=_State.secure_cookies
    )


def _session(request: Request) -> dict[str, Any] | None:
    """The session cookie's content, if it is ours, intact and not expired."""
    raw = request.cookies.get(SESSION_COOKIE)
    if not raw or "." not in raw or not _State.key:
        return None
    body, _, signature = raw.partition(".")
    try:
        payload = _unb64(body)
        if not hmac.compare_digest(_sign(payload), signature):
            return None
        data = json.loads(payload)
    except ValueError:
        return None
    if not isinstance(data, dict) or float(data.get("exp", 0)) < time.time():
        return None
    return data


def csrf_token(request: Request) -> str:
    """The CSRF token of the request's session ('' without one): put it in forms
    (``csrf_token``) or htmx headers (``X-CSRF-Token``)."""
    data = _session(request)
    return str(data.get("csrf", "")) if data else ""


def _session_principal(store: Credentials, data: dict[str, Any]) -> Principal | None:
    """The session's principal as the credentials stand now (revoked: None)."""
    via = str(data.get("via", ""))
    kind, _, ident = via.partition(":")
    if kind == "token":
        info = store.live_token(ident)
        return None if info is None else Principal(info.name, Role[info.role], via)
    if kind == "user":
        role = store.user_role(ident)
        return None if role is None else Principal(ident, Role[role], via)
    if kind == "local":
        return local_principal() if not store.any_configured() else None
    return None


def local_principal() -> Principal:
    return Principal(getpass.getuser(), Role.admin, "local")


def _is_loopback_request(request: Request) -> bool:
    """A request that is local: from the loopback address, and naming a loopback host
    (a foreign name pointing here — DNS rebinding — is not local), and for a change,
    not sent by a page of another origin."""
    client = request.client.host if request.client else ""
    host = urlsplit("//" + (request.headers.get("host") or "")).hostname or ""
    if client not in ("127.0.0.1", "::1") or host not in LOOPBACK_HOSTS:
        return False
    origin = request.headers.get("origin")
    if request.method in UNSAFE and origin:
        return (urlsplit(origin).hostname or "") in LOOPBACK_HOSTS
    return True


async def identify(request: Request) -> Principal | None:
    """The principal the request proves to be, or None. Raises a 401 problem for a
    bad token or a cookie request that changes something without its CSRF token."""
    store = _State.store
    if store is None:
        raise RuntimeError("openlam.server.auth is not configured (use create_app)")
    header = request.headers.get("authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Problem(
                401,
                "Bad authorization header",
                "send 'Authorization: Bearer <token>' (openlam tokens create)",
            )
        token = token.strip()
        principal = await _remembered(
            "t:" + hashlib.sha256(token.encode()).hexdigest(),
            lambda: authenticate_token(store, token),
        )
        if principal is None:
            raise Problem(
                401,
                "Unknown or revoked token",
                "create a token with `openlam tokens create NAME --role ROLE`",
            )
        return principal
    data = _session(request)
    if data is not None:
        principal = await _remembered(
            "s:" + str(data.get("via")), lambda: _session_principal(store, data)
        )
        if principal is None:
            return None
        if request.method in UNSAFE:
            await _check_csrf(request, str(data.get("csrf", "")))
        return principal
    configured = await _remembered("configured", store.any_configured)
    if not configured and _is_loopback_request(request):
        return local_principal()
    return None


async def _check_csrf(request: Request, expected: str) -> None:
    given = request.headers.get("x-csrf-token", "")
    if not given and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        value = form.get("csrf_token")
        given = value if isinstance(value, str) else ""
    if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        raise Problem(
            403,
            "CSRF token missing or wrong",
            "send the session's CSRF token in the X-CSRF-Token header or the csrf_token form field",
        )


def require(role: Role) -> Callable[[Request], Awaitable[Principal]]:
    """A FastAPI dependency: the calling principal, if it has at least ``role``
    (401 without credentials, 403 with too low a role)."""

    async def dependency(request: Request) -> Principal:
        principal = await identify(request)
        if principal is None:
            raise Problem(
                401,
                "Authentication required",
                "send 'Authorization: Bearer <token>' (create one with `openlam "
                "tokens create NAME --role ROLE`) or log in to the dashboard",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if principal.role < role:
            raise Problem(
                403,
                "Role too low",
                f"this needs the {role.name} role; {principal.name} has {principal.role.name}",
            )
        request.state.principal = principal
        return principal

    dependency.__name__ = f"require_{role.name}"
    dependency.guards_access = True  # type: ignore[attr-defined]  # see problems.py
    return dependency
