"""proxy: a local HTTP proxy through which a browser reaches only the addresses the
workspace's ``[network]`` rules allow.

The browser action starts one per browser and points Chromium at it for every request
(loopback included): page loads, each redirect hop, images, scripts, XHR/fetch,
WebSockets, service workers. For each request the proxy resolves the host, checks
every address (:func:`openlam.actions.network.checked_addresses`) and connects to the
checked address itself, so the browser's own DNS never decides where a request goes.

* ``CONNECT host:port`` (https, wss): checked, then a byte tunnel; TLS stays end to end
  between the browser and the site (the proxy sees no content).
* ``GET http://host/path`` (plain http, ws): checked, forwarded with ``Connection:
  close`` both ways (the site's answer is rewritten to say so too), so one proxy
  connection carries exactly one checked request: the browser never sends a second
  request, for another host, down a connection to the first.

A refused request is answered ``403`` with the header ``X-OpenLAM-Proxy: refused`` and
the reason as its body (also passed to ``on_refused``); a site that cannot be reached,
``502`` with ``X-OpenLAM-Proxy: unreachable``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from urllib.parse import urlsplit

from openlam.actions import network
from openlam.actions.network import NetworkRules
from openlam.errors import ActionError

log = logging.getLogger(__name__)

MAX_HEAD = 65_536
CONNECT_TIMEOUT = 10.0
PROXY_HEADER = "X-OpenLAM-Proxy"
HOP_HEADERS = frozenset({"connection", "proxy-connection", "keep-alive", "proxy-authorization"})


class GuardProxy:
    """``async with GuardProxy(rules) as proxy: proxy.url`` — see the module docstring."""

    def __init__(
        self, rules: NetworkRules, on_refused: Callable[[str], None] | None = None
    ) -> None:
        self.rules = rules
        self.on_refused = on_refused or (lambda _reason: None)
        self.server: asyncio.Server | None = None
        self.tasks: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        assert self.server is not None, "the proxy is not started"
        host, port = self.server.sockets[0].getsockname()[:2]
        return f"http://{host}:{port}"

    async def start(self) -> GuardProxy:
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", 0, limit=MAX_HEAD)
        return self

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for task in list(self.tasks):
            task.cancel()
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)

    async def __aenter__(self) -> GuardProxy:
        return await self.start()

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        try:
            await self._serve(reader, writer)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            pass  # the browser went away or sent something that is not HTTP
        finally:
            self.tasks.discard(task)
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        request_line, *lines = head.split("\r\n")
        method, target, version = request_line.split(" ", 2)
        if method == "CONNECT":
            parts = urlsplit(f"//{target}")
            host, port, rest = parts.hostname, parts.port or 443, ""
        else:
            parts = urlsplit(target)
            if parts.scheme not in ("http", "ws") or not parts.hostname:
                await _answer(writer, 400, f"the proxy takes absolute http URLs, not {target}")
                return
            host, port = parts.hostname, parts.port or 80
            path = parts.path or "/"
            kept = [
                line
                for line in lines
                if line and line.split(":", 1)[0].strip().lower() not in HOP_HEADERS
            ]
            upgrade = any(line.lower().startswith("upgrade:") for line in kept)
            kept.append("Connection: upgrade" if upgrade else "Connection: close")
            rest = "\r\n".join(
                [
                    f"{method} {path}{'?' + parts.query if parts.query else ''} {version}",
                    *kept,
                    "",
                    "",
                ]
            )
        assert host is not None
        upstream = await self._open(writer, host, port, f"{host}:{port}")
        if upstream is None:
            return
        up_reader, up_writer = upstream
        if method == "CONNECT":
            writer.write(b"HTTP/1.1 200 Connection Established\r\n\r\n")
        else:
            up_writer.write(rest.encode("latin-1"))
        sending = asyncio.create_task(_pipe(reader, up_writer))
        try:
            if method != "CONNECT":
                writer.write(_closing(await up_reader.readuntil(b"\r\n\r\n")))
            await _pipe(up_reader, writer)  # the exchange ends when the site stops answering
        finally:
            sending.cancel()
            up_writer.close()

    async def _open(
        self, writer: asyncio.StreamWriter, host: str, port: int, where: str
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        """A connection to a checked address of ``host``; None after answering why not."""
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                addresses = await network.checked_addresses(self.rules, host, port, where)
        except (ActionError, TimeoutError) as exc:
            reason = str(exc) if isinstance(exc, ActionError) else f"resolving {host} timed out"
            self.on_refused(reason)
            await _answer(writer, 403, reason)
            return None
        error: OSError | None = None
        for address in addresses:
            try:
                async with asyncio.timeout(CONNECT_TIMEOUT):
                    return await asyncio.open_connection(str(address), port)
            except (OSError, TimeoutError) as exc:
                error = OSError(str(exc) or "connect timeout")
        await _answer(writer, 502, f"cannot connect to {where}: {error}")
        return None


def _closing(head: bytes) -> bytes:
    """A response head that tells the browser the connection ends with this answer
    (a protocol switch, 101, keeps it: the connection becomes the WebSocket)."""
    status, *lines = head.decode("latin-1").split("\r\n")
    if " 101 " in f"{status} ":
        return head
    kept = [
        line for line in lines if line and line.split(":", 1)[0].strip().lower() not in HOP_HEADERS
    ]
    return "\r\n".join([status, *kept, "Connection: close", "", ""]).encode("latin-1")


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy until the reader ends, then end the writer's side."""
    try:
        while data := await reader.read(65_536):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError, RuntimeError):
            if writer.can_write_eof():
                writer.write_eof()
            else:
                writer.close()


async def _answer(writer: asyncio.StreamWriter, status: int, reason: str) -> None:
    body = reason.encode("utf-8")
    words, kind = {
        400: ("Bad Request", "bad-request"),
        403: ("Forbidden", "refused"),
        502: ("Bad Gateway", "unreachable"),
    }[status]
    head = [
        f"HTTP/1.1 {status} {words}",
        "Content-Type: text/plain; charset=utf-8",
        f"Content-Length: {len(body)}",
        "Connection: close",
        f"{PROXY_HEADER}: {kind}",
    ]
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
    with contextlib.suppress(OSError):
        await writer.drain()
