"""Calling an OpenAPI operation: the request built from the action's arguments, the
service's authentication, and the answer (or an error naming the cause)."""

from __future__ import annotations

import asyncio
import json
import weakref
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from openlam.actions.openapi.config import ServiceConfig, parse_auth
from openlam.errors import ActionError

CONNECT_TIMEOUT = 5.0
IDEMPOTENT_METHODS = frozenset({"get", "head", "options", "trace", "put", "delete"})


_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, Any]] = (
    weakref.WeakKeyDictionary()
)


def new_http_client(settings: Any, base_url: str) -> Any:
    """THE place where the HTTP client for imported operations is made: the workforce's
    outbound-HTTP chokepoint (:func:`openlam.actions.httpkit.client`), so every request
    and redirect hop passes the address rules. The service's base URL was configured by
    the user (``openlam openapi add``), so its host is reachable wherever it is."""
    from openlam.actions import httpkit

    return httpkit.client(settings, configured=[base_url])


def _client(settings: Any, base_url: str) -> Any:
    """One client per event loop and service address (connections are reused)."""
    clients = _clients.setdefault(asyncio.get_running_loop(), {})
    client = clients.get(base_url)
    if client is None or client.is_closed:
        client = clients[base_url] = new_http_client(settings, base_url)
    return client


async def aclose_all() -> None:
    """Close this event loop's HTTP connections to OpenAPI services."""
    for client in _clients.pop(asyncio.get_running_loop(), {}).values():
        await client.aclose()


close_all = aclose_all
"""Plugin lifecycle hook (called by the runtime at shutdown)."""


async def call_operation(
    service: ServiceConfig,
    op: dict[str, Any],
    args: dict[str, Any],
    *,
    base_url: str | None,
    secret: Callable[[str], str | None],
    idempotency_key: str | None = None,
    settings: Any = None,
) -> Any:
    import httpx

    from openlam.actions import httpkit  # imports httpx: only when a service is called

    what = f"{service.name}.{op['action']} ({op['method']} {op['path']})"
    if not base_url:
        raise ActionError(f"{what}: the service has no base URL; add it again with --base-url")
    path = op["path"]
    query: list[tuple[str, str]] = []
    headers: dict[str, str] = {"Accept": "application/json"}
    cookies: dict[str, str] = {}
    for param in op["params"]:
        if param["arg"] not in args or args[param["arg"]] is None:
            continue
        value = args[param["arg"]]
        if param["in"] == "path":
            path = path.replace(f"{{{param['name']}}}", quote(_scalar(value), safe=""))
        elif param["in"] == "query":
            query += _query_pairs(param, value)
        elif param["in"] == "header":
            headers[param["name"]] = _scalar(value)
        else:
            cookies[param["name"]] = _scalar(value)
    request: dict[str, Any] = {}
    body = op.get("body")
    value = _body_value(body, args) if body else None
    if body and value is not None:
        kind = body["content_type"]
        if "json" in kind:
            request["json"] = value
        elif kind in ("application/x-www-form-urlencoded", "multipart/form-data") and isinstance(
            value, dict
        ):
            request["data"] = {k: _scalar(v) for k, v in value.items()}
        else:
            request["content"] = value if isinstance(value, str) else json.dumps(value)
            headers["Content-Type"] = kind
    secret_values = _apply_auth(service, headers, query, request, secret, what)
    idempotent = op["method"].lower() in IDEMPOTENT_METHODS
    if not idempotent and idempotency_key:
        headers.setdefault("Idempotency-Key", idempotency_key)
    if cookies:
        headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
    url = base_url.rstrip("/") + path
    timeout = httpx.Timeout(service.timeout, connect=min(CONNECT_TIMEOUT, service.timeout))
    try:
        async with asyncio.timeout(service.timeout):
            http = _client(settings, base_url)
            async with http.stream(
                op["method"], url, params=query, headers=headers, timeout=timeout, **request
            ) as response:
                data = await httpkit.read_body(response, max_bytes=service.max_bytes, what=what)
    except (TimeoutError, httpx.TimeoutException):
        raise httpkit.after_sending(
            f"{what} did not answer within {service.timeout:g}s", idempotent
        ) from None
    except httpx.ConnectError as exc:
        raise ActionError(
            f"cannot reach {service.name} at {base_url}: "
            f"{httpkit.scrub(str(exc), secret_values) or 'connection failed'}",
            transient=True,
        ) from None
    except httpx.HTTPError as exc:
        raise httpkit.after_sending(
            f"{what} failed: {httpkit.scrub(str(exc), secret_values)}", idempotent
        ) from None
    status = response.status_code
    content_type = response.headers.get("content-type", "")
    if status >= 400 or status < 200:
        message = httpkit.scrub(_error_message(data, response.encoding), secret_values)
        raise httpkit.status_error(what, status, message, secrets=service.secrets)
    if not data:
        return {"status": status}
    if "json" in content_type or content_type == "":
        try:
            return json.loads(data)
        except (ValueError, RecursionError):  # nested too deep is not JSON to us either
            if "json" in content_type:
                raise ActionError(f"{what} answered with invalid JSON") from None
    return {
        "status": status,
        "content_type": content_type,
        "text": data.decode(response.encoding or "utf-8", errors="replace"),
    }


def _body_value(body: dict[str, Any], args: dict[str, Any]) -> Any:
    """What to send as the request body: the one ``body`` argument, or the object made of
    the body's field arguments (None: send no body)."""
    if "fields" not in body:
        return args.get(body["arg"])
    value = {field: args[arg] for arg, field in body["fields"].items() if arg in args}
    return value if value or body.get("required") else None


def _apply_auth(
    service: ServiceConfig,
    headers: dict[str, str],
    query: list[tuple[str, str]],
    request: dict[str, Any],
    secret: Callable[[str], str | None],
    what: str,
) -> list[str]:
    auth = parse_auth(service.auth)
    if auth is None:
        return []

    def need(name: str) -> str:
        value = secret(name)
        if not value:
            raise ActionError(
                f"{what}: the secret {name} is not set (set it with `openlam "
                f"secrets set {name}` or the environment variable {name})"
            )
        return value

    kind = auth["kind"]
    if kind == "bearer":
        value = need(auth["secret"])
        headers["Authorization"] = f"Bearer {value}"
        return [value]
    if kind == "header":
        value = need(auth["secret"])
        headers[auth["header"]] = value
        return [value]
    if kind == "query":
        value = need(auth["secret"])
        query.append((auth["param"], value))
        return [value]
    user, password = need(auth["user_secret"]), need(auth["password_secret"])
    import httpx

    request["auth"] = httpx.BasicAuth(user, password)
    return [user, password]


def _error_message(data: bytes, encoding: str | None) -> str:
    """The message an API put in its error body: RFC 7807 ``detail``/``title``,
    ``message``, ``error`` (string or object), FastAPI's validation ``detail`` list."""
    text = data.decode(encoding or "utf-8", errors="replace").strip()
    try:
        body = json.loads(text)
    except (ValueError, RecursionError):
        return text[:300] or "(empty body)"
    found = _message_in(body)
    return (found or text)[:500]


def _message_in(body: Any) -> str | None:
    if isinstance(body, str):
        return body
    if isinstance(body, list):
        parts = [m for m in (_message_in(v) for v in body[:5]) if m]
        return "; ".join(parts) or None
    if not isinstance(body, dict):
        return None
    if "msg" in body and "loc" in body:  # a FastAPI/pydantic validation error
        loc = ".".join(str(p) for p in body["loc"] if p != "body")
        return f"{loc}: {body['msg']}" if loc else str(body["msg"])
    for key in ("detail", "message", "error_description", "error", "title", "errors"):
        if key in body:
            found = _message_in(body[key])
            if found:
                return found
    return None


def _query_pairs(param: dict[str, Any], value: Any) -> list[tuple[str, str]]:
    name = param["name"]
    explode = param.get("explode")
    explode = True if explode is None else explode
    if isinstance(value, list):
        if explode:
            return [(name, _scalar(v)) for v in value]
        sep = {"spaceDelimited": " ", "pipeDelimited": "|"}.get(param.get("style") or "", ",")
        return [(name, sep.join(_scalar(v) for v in value))]
    if isinstance(value, dict):
        if param.get("style") == "deepObject":
            return [(f"{name}[{k}]", _scalar(v)) for k, v in value.items()]
        if explode:
            return [(str(k), _scalar(v)) for k, v in value.items()]
        return [(name, ",".join(f"{k},{_scalar(v)}" for k, v in value.items()))]
    return [(name, _scalar(value))]


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)
