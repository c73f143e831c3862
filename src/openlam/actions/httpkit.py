"""httpkit: the HTTP habits every action shares.

One request helper with a hard total deadline (httpx's timeouts are per operation, so a
server that drips a byte a second would otherwise never time out), a size-limited body,
and one mapping from what went wrong to an :class:`ActionError` that names the cause:

* nothing was sent (refused connection, DNS, connect timeout) → transient, retry is safe;
* the request may have been delivered (read timeout, dropped connection) → transient
  only when the caller says a repeat is harmless (``idempotent=True``), otherwise a
  failure telling the user to check before trying again;
* HTTP 408/425/429/5xx → transient; other 4xx → not.

``what`` labels the peer in messages ("Slack webhook", "Stripe"); the URL is never put
in a message unless the caller passes it as ``what``, because URLs can carry tokens.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import httpx

from openlam.errors import ActionError

DEFAULT_TIMEOUT = 20.0
CONNECT_TIMEOUT = 5.0
DEFAULT_MAX_BYTES = 5_000_000
TRANSIENT_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


@dataclass
class Reply:
    """A finished HTTP exchange: status, headers and the whole (size-checked) body."""

    status: int
    headers: httpx.Headers
    body: bytes
    url: str
    encoding: str | None = None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def text(self) -> str:
        return self.body.decode(self.encoding or "utf-8", errors="replace")

    def json(self, what: str) -> Any:
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError):
            snippet = self.text()[:200].strip()
            raise ActionError(f"{what} answered HTTP {self.status} with something that is not "
                              f"JSON: {snippet!r}") from None


def timeout(total: float = DEFAULT_TIMEOUT) -> httpx.Timeout:
    """httpx timeouts for a request whose whole exchange must end within ``total``."""
    return httpx.Timeout(total, connect=min(CONNECT_TIMEOUT, total))


async def read_body(response: httpx.Response, *, max_bytes: int, what: str) -> bytes:
    """Read a streamed body, refusing one larger than ``max_bytes`` (after decompression)."""
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise ActionError(f"{what} sent {int(declared)} bytes, more than the limit of "
                          f"{max_bytes} bytes")
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body.extend(chunk)
        if len(body) > max_bytes:
            raise ActionError(f"{what} sent more than the limit of {max_bytes} bytes")
    return bytes(body)


async def request(
    client: httpx.AsyncClient,
    method: str,
    url: str | httpx.URL,
    *,
    what: str,
    idempotent: bool,
    max_bytes: int = DEFAULT_MAX_BYTES,
    deadline: float = DEFAULT_TIMEOUT,
    redact: Iterable[str] = (),
    **kwargs: Any,
) -> Reply:
    """Send one request and read the reply within ``deadline`` seconds in total.

    Transport problems and the deadline become :class:`ActionError`; HTTP error statuses
    do not (the caller knows the API's error format) — see :func:`status_error`.
    """
    try:
        async with asyncio.timeout(deadline):
            async with client.stream(method, url, **kwargs) as response:
                body = await read_body(response, max_bytes=max_bytes, what=what)
                return Reply(response.status_code, response.headers, body,
                             str(response.url), response.charset_encoding)
    except TimeoutError:
        raise after_sending(f"{what} did not answer within {deadline:g}s",
                            idempotent) from None
    except httpx.HTTPError as exc:
        raise transport_error(exc, what, idempotent=idempotent, redact=redact) from None


def transport_error(exc: httpx.HTTPError, what: str, *, idempotent: bool,
                    redact: Iterable[str] = ()) -> ActionError:
    """Map an httpx exception to an ActionError that says what happened."""
    detail = scrub(str(exc) or type(exc).__name__, redact)
    tls = tls_failure(exc)
    if tls is not None:
        reason = getattr(tls, "verify_message", "") or getattr(tls, "reason", "") or str(tls)
        reason = scrub(str(reason), redact).rstrip(". ")
        return ActionError(f"the TLS connection to {what} failed: {reason} (its certificate is "
                           "not valid for this name, or not from a trusted authority)")
    if isinstance(exc, httpx.ConnectTimeout):
        return ActionError(f"cannot connect to {what}: no answer within the connect "
                           "timeout", transient=True)
    if isinstance(exc, httpx.ConnectError):
        return ActionError(f"cannot connect to {what} ({detail}); check that it is running "
                           "and its address is right", transient=True)
    if isinstance(exc, httpx.TimeoutException):
        return after_sending(f"{what} did not answer in time ({type(exc).__name__})",
                             idempotent)
    if isinstance(exc, httpx.TooManyRedirects):
        return ActionError(f"{what} redirected too many times")
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return ActionError(f"{what} has an unusable address: {detail}")
    if isinstance(exc, httpx.TransportError):
        return after_sending(f"the connection to {what} failed ({detail})", idempotent)
    return ActionError(f"request to {what} failed: {detail}")


def tls_failure(exc: BaseException) -> ssl.SSLError | None:
    """The TLS error behind an httpx exception (a bad or untrusted certificate), if any."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ssl.SSLError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def after_sending(message: str, idempotent: bool) -> ActionError:
    """A failure once the request may have reached the peer: transient only when
    repeating it is harmless."""
    if idempotent:
        return ActionError(message, transient=True)
    return ActionError(f"{message}; the request may have been delivered, so it is not "
                       "repeated automatically: check the result before running it again")


def status_error(what: str, status: int, detail: str = "", *,
                 transient: bool | None = None, secrets: Iterable[str] = ()) -> ActionError:
    """An ActionError for an HTTP error status, with a hint for the common ones;
    ``secrets`` names the secrets that hold the credentials (never their values)."""
    if transient is None:
        transient = status in TRANSIENT_STATUSES or status >= 500
    names = ", ".join(secrets)
    hints = {
        401: f"the credentials were refused; check the secret {names}".rstrip(),
        403: "the credentials lack permission for this",
        404: "the address or the object does not exist",
        413: "the request is too large",
    }
    text = f"{what} answered HTTP {status}"
    if detail:
        text += f": {detail.strip()[:500]}"
    if status in hints:
        text += f" ({hints[status]})"
    elif transient:
        text += " (a temporary condition; worth retrying)"
    return ActionError(text, transient=transient)


def scrub(text: str, secrets: Iterable[str]) -> str:
    """Remove secret values (tokens, webhook URLs) from a message."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    return text
