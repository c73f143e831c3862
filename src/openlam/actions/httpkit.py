"""httpkit: the one way actions speak HTTP.

**Every outbound HTTP request of every action goes through a client made here**, so that
the address rules of :mod:`openlam.actions.network` hold everywhere. The API:

* ``client(settings, ...) -> httpx.AsyncClient`` — a client whose every request (each
  redirect hop included) is checked: the host is resolved, every address it resolves
  to must pass ``[network]`` in openlam.toml, and the connection goes to the very
  address that was checked (the Host header and the TLS server name keep the host
  name), so a DNS answer that changes between check and connect cannot slip through.
  Proxies from the environment are not used (they would connect elsewhere). Use it as
  ``async with httpkit.client(ctx.settings, timeout=30) as c: ...``.
* ``transport(settings, ...)`` — the same checks as an httpx transport, for a client
  built elsewhere (``library=httpx2`` gives one for the ``httpx2`` fork the MCP SDK
  uses).
* ``send(settings, method, url, what=..., idempotent=...) -> Reply`` — one request
  through a fresh client, the common case.

A refused address raises :class:`~openlam.actions.network.AddressRefused` (an
ActionError, not an httpx error) naming the address and the setting that allows it;
nothing is sent.

Besides the address rules, the HTTP habits every action shares: one request helper with
a hard total deadline (httpx's timeouts are per operation, so a server that drips a
byte a second would otherwise never time out), a size-limited body, and one mapping from
what went wrong to an :class:`ActionError` that names the cause:

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
import functools
import json
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any

from openlam.actions import network
from openlam.actions.network import AddressRefused, NetworkRules
from openlam.errors import ActionError

if TYPE_CHECKING:  # imported where a request is made: loading the actions needs no httpx
    import httpx

DEFAULT_TIMEOUT = 20.0
CONNECT_TIMEOUT = 5.0
DEFAULT_MAX_BYTES = 5_000_000
MAX_REDIRECTS = 5
TRANSIENT_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
DEFAULT_PORTS = {"http": 80, "https": 443}


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
        except (ValueError, UnicodeDecodeError, RecursionError):  # nested too deep too
            snippet = self.text()[:200].strip()
            raise ActionError(
                f"{what} answered HTTP {self.status} with something that is not JSON: {snippet!r}"
            ) from None


def client(
    settings: Any = None,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    follow_redirects: bool = True,
    max_redirects: int = MAX_REDIRECTS,
    verify: ssl.SSLContext | bool = True,
    headers: dict[str, str] | None = None,
    configured: Iterable[str] = (),
    rules: NetworkRules | None = None,
    library: ModuleType | None = None,
    **kwargs: Any,
) -> Any:
    """An AsyncClient (of ``library``, default httpx) whose every request passes the
    address rules of ``settings`` (a workspace's Settings; None: the strict default) or
    the explicit ``rules``. ``configured`` lists endpoint URLs the user configured (in
    openlam.toml or a secret, never from a plan): their hosts are reachable whatever
    they resolve to. ``timeout`` is the per-operation timeout in seconds; pass
    ``deadline`` to :func:`request` for the whole exchange. Other keyword arguments go
    to the client (``auth``, ``cookies``…)."""
    import httpx

    lib = library or httpx
    return lib.AsyncClient(
        transport=transport(
            settings, verify=verify, configured=configured, rules=rules, library=lib
        ),
        timeout=lib.Timeout(timeout, connect=min(CONNECT_TIMEOUT, timeout)),
        follow_redirects=follow_redirects,
        max_redirects=max_redirects,
        headers=headers,
        trust_env=False,
        **kwargs,
    )


def transport(
    settings: Any = None,
    *,
    verify: ssl.SSLContext | bool = True,
    configured: Iterable[str] = (),
    rules: NetworkRules | None = None,
    library: ModuleType | None = None,
) -> Any:
    """An async transport (of ``library``, default httpx) that checks and pins the
    address of every request it carries; see :func:`client` and the module's docstring."""
    import httpx

    lib = library or httpx
    checked = rules if rules is not None else NetworkRules.from_settings(settings)
    return _guarded_class(lib)(checked.trusting(configured), verify, lib)


async def send(
    settings: Any,
    method: str,
    url: str | httpx.URL,
    *,
    what: str,
    idempotent: bool,
    deadline: float = DEFAULT_TIMEOUT,
    max_bytes: int = DEFAULT_MAX_BYTES,
    redact: Iterable[str] = (),
    follow_redirects: bool = True,
    verify: ssl.SSLContext | bool = True,
    configured: Iterable[str] = (),
    **kwargs: Any,
) -> Reply:
    """One request through a fresh checked client (see :func:`client` for
    ``configured``, :func:`request` for the rest)."""
    async with client(
        settings,
        timeout=deadline,
        follow_redirects=follow_redirects,
        verify=verify,
        configured=configured,
    ) as http:
        return await request(
            http,
            method,
            url,
            what=what,
            idempotent=idempotent,
            max_bytes=max_bytes,
            deadline=deadline,
            redact=redact,
            **kwargs,
        )


@functools.cache
def _guarded_class(lib: ModuleType) -> type:
    """The checking transport for an httpx-like library (httpx, or the httpx2 fork)."""

    class GuardedTransport(lib.AsyncBaseTransport):  # type: ignore[name-defined, misc]
        """Resolves, checks and pins the address of each request; connections are pooled
        per host name, so a TLS connection verified for one name never serves another."""

        def __init__(
            self, rules: NetworkRules, verify: ssl.SSLContext | bool, library: ModuleType
        ) -> None:
            self.rules, self.verify, self.lib = rules, verify, library
            self.pools: dict[tuple[str, str, int], Any] = {}

        async def handle_async_request(self, request: Any) -> Any:
            url = request.url
            if url.scheme not in DEFAULT_PORTS or not url.host:
                raise AddressRefused(
                    f"refused a request to a {url.scheme or 'relative'} URL: "
                    "actions speak http and https only"
                )
            host, port = url.host, url.port or DEFAULT_PORTS[url.scheme]
            where = f"{url.scheme}://{url.netloc.decode('ascii')}"
            connect = (request.extensions.get("timeout") or {}).get("connect")
            try:
                async with asyncio.timeout(connect):
                    addresses = await network.checked_addresses(self.rules, host, port, where)
            except TimeoutError:
                raise ActionError(
                    f"resolving {host} took longer than {connect:g}s", transient=True
                ) from None
            pool = self.pools.get((url.scheme, host, port))
            if pool is None:
                pool = self.pools[(url.scheme, host, port)] = self.lib.AsyncHTTPTransport(
                    verify=self.verify
                )
            extensions = dict(request.extensions)
            if url.scheme == "https" and network.literal(host) is None:
                extensions["sni_hostname"] = host
            error: Exception | None = None
            for address in addresses:  # in the resolver's order; the next if one is down
                pinned = self.lib.Request(
                    request.method,
                    url.copy_with(host=str(address)),
                    headers=request.headers,
                    stream=request.stream,
                    extensions=extensions,
                )
                try:
                    return await pool.handle_async_request(pinned)
                except self.lib.ConnectError as exc:
                    error = exc
                    if tls_failure(exc):
                        break  # another address of the host will not have a better certificate
            assert error is not None
            raise error

        async def aclose(self) -> None:
            pools, self.pools = list(self.pools.values()), {}
            for pool in pools:
                await pool.aclose()

    return GuardedTransport


def timeout(total: float = DEFAULT_TIMEOUT) -> httpx.Timeout:
    """httpx timeouts for a request whose whole exchange must end within ``total``."""
    import httpx

    return httpx.Timeout(total, connect=min(CONNECT_TIMEOUT, total))


def header_count(value: str | bytes | None) -> int | None:
    """A count a peer sent in a header (Content-Length, Last-Event-ID), or None when it is
    not one (see :func:`openlam.validation.whole_number`)."""
    from openlam.validation import whole_number

    text = value.decode("latin-1") if isinstance(value, bytes) else (value or "")
    return whole_number(text.strip())


async def read_body(response: httpx.Response, *, max_bytes: int, what: str) -> bytes:
    """Read a streamed body, refusing one larger than ``max_bytes`` (after decompression)."""
    declared = header_count(response.headers.get("content-length"))
    if declared is not None and declared > max_bytes:
        raise ActionError(f"{what} sent {declared} bytes, more than the limit of {max_bytes} bytes")
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
    import httpx

    try:
        async with asyncio.timeout(deadline):
            async with client.stream(method, url, **kwargs) as response:
                body = await read_body(response, max_bytes=max_bytes, what=what)
                return Reply(
                    response.status_code,
                    response.headers,
                    body,
                    str(response.url),
                    response.charset_encoding,
                )
    except TimeoutError:
        raise after_sending(f"{what} did not answer within {deadline:g}s", idempotent) from None
    except (httpx.HTTPError, httpx.InvalidURL) as exc:  # InvalidURL is no HTTPError
        raise transport_error(exc, what, idempotent=idempotent, redact=redact) from None


def transport_error(
    exc: httpx.HTTPError | httpx.InvalidURL,
    what: str,
    *,
    idempotent: bool,
    redact: Iterable[str] = (),
) -> ActionError:
    """Map an httpx exception to an ActionError that says what happened."""
    import httpx

    detail = scrub(str(exc) or type(exc).__name__, redact)
    tls = tls_failure(exc)
    if tls is not None:
        reason = getattr(tls, "verify_message", "") or getattr(tls, "reason", "") or str(tls)
        reason = scrub(str(reason), redact).rstrip(". ")
        return ActionError(
            f"the TLS connection to {what} failed: {reason} (its certificate is "
            "not valid for this name, or not from a trusted authority)"
        )
    if isinstance(exc, httpx.ConnectTimeout):
        return ActionError(
            f"cannot connect to {what}: no answer within the connect timeout", transient=True
        )
    if isinstance(exc, httpx.ConnectError):
        return ActionError(
            f"cannot connect to {what} ({detail}); check that it is running "
            "and its address is right",
            transient=True,
        )
    if isinstance(exc, httpx.TimeoutException):
        return after_sending(f"{what} did not answer in time ({type(exc).__name__})", idempotent)
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
    return ActionError(
        f"{message}; the request may have been delivered, so it is not "
        "repeated automatically: check the result before running it again"
    )


def status_error(
    what: str,
    status: int,
    detail: str = "",
    *,
    transient: bool | None = None,
    secrets: Iterable[str] = (),
) -> ActionError:
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
