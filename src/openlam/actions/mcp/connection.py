"""Live sessions with MCP servers: one per server per event loop, started lazily on the
first call and reused by every call of that loop (concurrent calls included)."""

from __future__ import annotations

import asyncio
import atexit
import logging
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

from openlam.actions.mcp.config import LOG_DIR, ServerConfig
from openlam.errors import ActionError

log = logging.getLogger("openlam.actions.mcp")

SecretLookup = Callable[[str], str | None]


class _Connection:
    """One live session with one server. A dedicated task owns the client (the SDK's
    transports are anyio task groups that must be entered and left by the same task);
    callers on any task of the same event loop send requests through it."""

    def __init__(self, server: ServerConfig, workspace: Path) -> None:
        self.server = server
        self.workspace = workspace
        self.client: Any = None
        self.started = time.monotonic()
        self._stop = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.dead = False

    async def start(self, secret: SecretLookup) -> None:
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()
        transport = self._transport(secret)
        self.task = loop.create_task(
            self._own(transport, ready), name=f"openlam-mcp-{self.server.name}"
        )
        try:
            async with asyncio.timeout(self.server.startup_timeout):
                await asyncio.shield(ready)
        except TimeoutError:
            await self.close()
            raise ActionError(
                f"MCP server {self.server.name} did not start within "
                f"{self.server.startup_timeout:g}s ({self.server.describe()})"
            ) from None
        except BaseException:
            await self.close()
            raise

    def _transport(self, secret: SecretLookup) -> Any:
        from mcp.client.stdio import StdioServerParameters, stdio_client

        server = self.server
        if server.transport == "http":
            import httpx2

            from mcp.client.streamable_http import streamable_http_client

            headers = {h: _need_secret(secret, s, server) for h, s in server.header_secrets.items()}
            if server.bearer_secret:
                token = _need_secret(secret, server.bearer_secret, server)
                headers["Authorization"] = f"Bearer {token}"
            from openlam.actions import httpkit
            from openlam.config import load_settings

            # the outbound-HTTP chokepoint: the server's address was configured by the
            # user; any redirect elsewhere is checked like every other request
            http = httpkit.client(
                load_settings(self.workspace),
                configured=[str(server.url)],
                library=httpx2,
                headers=headers,
                timeout=30.0,
            )
            return streamable_http_client(
                str(server.url), http_client=http, max_sse_event_size=server.max_message_bytes
            )
        env = dict(server.env)
        env.update({k: _need_secret(secret, s, server) for k, s in server.env_secrets.items()})
        cwd = (self.workspace / server.cwd) if server.cwd else self.workspace
        params = StdioServerParameters(
            command=str(server.command), args=list(server.args), env=env or None, cwd=str(cwd)
        )
        log_dir = self.workspace / ".openlam" / LOG_DIR
        log_dir.mkdir(parents=True, exist_ok=True)
        self._errlog = (log_dir / f"mcp-{server.name}.log").open("a", encoding="utf-8")
        return stdio_client(params, errlog=self._errlog)

    async def _own(self, transport: Any, ready: asyncio.Future[None]) -> None:
        from mcp import Client
        from mcp.types import Implementation

        try:
            async with Client(
                transport, client_info=Implementation(name="openlam", version="0.1")
            ) as client:
                self.client = client
                ready.set_result(None)
                await self._stop.wait()
        except BaseException as exc:
            if not ready.done():
                ready.set_exception(_start_error(self.server, exc))
            elif not isinstance(exc, asyncio.CancelledError):
                log.warning("MCP server %s stopped: %s", self.server.name, unwrap(exc))
            if isinstance(exc, asyncio.CancelledError | KeyboardInterrupt | SystemExit):
                raise
        finally:
            self.dead = True
            self.client = None
            errlog = getattr(self, "_errlog", None)
            if errlog is not None:
                errlog.close()

    async def close(self) -> None:
        self.dead = True
        self._stop.set()
        task = self.task
        if task is None or task.done():
            return
        try:
            async with asyncio.timeout(10):
                await asyncio.shield(task)
        except TimeoutError:
            task.cancel()
        except BaseException as exc:  # its own failure was logged by the task
            log.debug("MCP server %s closed with %r", self.server.name, exc)


class _Pool:
    """The connections of one event loop, by server (and workspace and configuration)."""

    def __init__(self) -> None:
        self.connections: dict[tuple[str, str, str], _Connection] = {}
        self.locks: dict[tuple[str, str, str], asyncio.Lock] = {}

    async def get(self, server: ServerConfig, workspace: Path, secret: SecretLookup) -> _Connection:
        key = (server.name, str(workspace), server.fingerprint())
        conn = self.connections.get(key)
        if conn is not None and not conn.dead:
            return conn
        lock = self.locks.setdefault(key, asyncio.Lock())
        async with lock:
            conn = self.connections.get(key)
            if conn is None or conn.dead:
                conn = _Connection(server, workspace)
                await conn.start(secret)
                self.connections[key] = conn
            return conn

    async def drop(self, conn: _Connection) -> None:
        for key, value in list(self.connections.items()):
            if value is conn:
                del self.connections[key]
        await conn.close()

    async def aclose(self) -> None:
        conns = list(self.connections.values())
        self.connections.clear()
        await asyncio.gather(*(c.close() for c in conns), return_exceptions=True)


_pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Pool] = weakref.WeakKeyDictionary()


def _pool() -> _Pool:
    loop = asyncio.get_running_loop()
    pool = _pools.get(loop)
    if pool is None:
        pool = _pools[loop] = _Pool()
    return pool


async def aclose_all() -> None:
    """Shut down every MCP server this event loop started (call at the end of a run)."""
    pool = _pools.pop(asyncio.get_running_loop(), None)
    if pool is not None:
        await pool.aclose()


async def close_all() -> None:
    """Plugin lifecycle hook (called by the runtime at shutdown): every MCP server this
    process started, on this event loop and on any other. Servers are deliberately not
    closed per run — concurrent runs in one process share them."""
    await aclose_all()
    if any(pool.connections for pool in _pools.values()):
        await asyncio.to_thread(shutdown)


def running_servers() -> list[str]:
    """Names of the servers with a live session on the current event loop."""
    pool = _pools.get(asyncio.get_running_loop())
    return sorted({c.server.name for c in pool.connections.values() if not c.dead}) if pool else []


def shutdown(timeout: float = 15.0) -> None:
    """Shut down the servers of every event loop, from synchronous code (e.g. when a
    Workforce closes, or at exit). A loop running in another thread is asked to close its
    servers; a stopped loop is run until they are closed; a closed loop closed them when
    its tasks were cancelled. The loop running in this thread, if any, is skipped: use
    ``await aclose_all()`` there."""
    import concurrent.futures

    try:
        here: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        here = None
    for loop, pool in list(_pools.items()):
        if loop is here or not pool.connections or loop.is_closed():
            continue
        _pools.pop(loop, None)
        try:
            if loop.is_running():
                asyncio.run_coroutine_threadsafe(pool.aclose(), loop).result(timeout)
            else:
                loop.run_until_complete(pool.aclose())
        except (concurrent.futures.TimeoutError, RuntimeError) as exc:
            log.warning("MCP servers of an event loop did not shut down: %r", exc)


atexit.register(shutdown)


def _need_secret(secret: SecretLookup, name: str, server: ServerConfig) -> str:
    value = secret(name)
    if not value:
        raise ActionError(
            f"MCP server {server.name} needs the secret {name}, which is not set "
            f"(set it with `openlam secrets set {name}` or the environment "
            f"variable {name})"
        )
    return value


def unwrap(exc: BaseException) -> str:
    """The innermost meaningful message of an exception (group)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _start_error(server: ServerConfig, exc: BaseException) -> BaseException:
    if isinstance(exc, ActionError):
        return exc
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, FileNotFoundError):
        return ActionError(
            f"cannot start MCP server {server.name}: command {server.command!r} not found"
        )
    if isinstance(exc, ActionError):
        return exc
    transient = server.transport == "http"
    return ActionError(
        f"cannot start MCP server {server.name} ({server.describe()}): {unwrap(exc)}",
        transient=transient,
    )


def start_hint(server: ServerConfig) -> str:
    if server.transport == "http":
        return "check that the server is running at that URL and speaks streamable HTTP"
    return (
        f"check that `{server.describe()}` runs in a terminal; its error output is in "
        f".openlam/{LOG_DIR}/mcp-{server.name}.log"
    )
