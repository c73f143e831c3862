"""MCP servers as a source of actions: every tool of a configured server is an action
``SERVER.tool``.

Where things live (all inside the workspace's state directory, ``.openlam/``):

* ``mcp.json`` — the configured servers, written by ``openlam mcp add|rm``::

      {"servers": {"time": {"transport": "stdio", "command": "mcp-server-time", "args": []},
                   "docs": {"transport": "http", "url": "http://127.0.0.1:9000/mcp",
                            "bearer_secret": "DOCS_TOKEN"}}}

* ``cache/mcp/NAME.json`` — each server's tool list, refreshed by ``openlam mcp add`` and
  ``openlam mcp test``. Loading the registry reads only these files: no server is started
  just because ``openlam`` ran.

Servers start lazily on the first call of one of their tools and are then reused: one
session per server per event loop (a run, a CLI command, a worker). :func:`aclose_all`
shuts them down; a server still open when its event loop is torn down (``asyncio.run``
cancels leftover tasks) is shut down then, and a stdio server whose parent process exits
sees its stdin close and exits too.

Risk tiers come from the tools' annotations — ``readOnlyHint`` → read, ``destructiveHint``
→ destructive, anything else → external — and can be overridden per tool with the
server's ``risk`` map (``openlam mcp add … --risk TOOL=TIER``).
"""

from __future__ import annotations

import asyncio
import atexit
import hashlib
import json
import logging
import os
import re
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from openlam.actions.sources import Sources
from openlam.actions.spec import ActionContext, ActionSpec, Risk, json_schema_validator
from openlam.errors import ActionError, UserError

LOG_DIR = "logs"
STARTUP_TIMEOUT = 30.0
log = logging.getLogger(__name__)

SecretLookup = Callable[[str], str | None]


# ----------------------------------------------------------------------- configuration


@dataclass
class ServerConfig:
    """One configured MCP server."""

    name: str
    transport: str  # "stdio" | "http"
    command: str | None = None
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    env_secrets: dict[str, str] = field(default_factory=dict)
    """Environment variable → secret name, resolved when the server starts."""
    cwd: str | None = None
    url: str | None = None
    bearer_secret: str | None = None
    header_secrets: dict[str, str] = field(default_factory=dict)
    """HTTP header → secret name (the secret is the header's whole value)."""
    risk: dict[str, str] = field(default_factory=dict)
    """Tool name → risk tier, overriding what the tool's annotations say."""
    timeout: float | None = None
    """Seconds one tool call may take (default: the step timeout)."""
    startup_timeout: float = STARTUP_TIMEOUT

    def __post_init__(self) -> None:
        if self.transport == "stdio" and not self.command:
            raise UserError(f"MCP server {self.name}: a stdio server needs a command",
                            f"openlam mcp add {self.name} -- COMMAND ARGS…")
        if self.transport == "http" and not self.url:
            raise UserError(f"MCP server {self.name}: an HTTP server needs a URL",
                            f"openlam mcp add {self.name} --url URL")
        if self.transport not in ("stdio", "http"):
            raise UserError(f"MCP server {self.name}: unknown transport {self.transport!r}",
                            "use stdio (a command) or http (a URL)")
        for tool, tier in self.risk.items():
            if tier not in Risk.__members__:
                raise UserError(f"MCP server {self.name}: tool {tool} has unknown risk {tier!r}",
                                f"use one of {', '.join(Risk.__members__)}")

    @property
    def secrets(self) -> tuple[str, ...]:
        names = [*self.env_secrets.values(), *self.header_secrets.values()]
        if self.bearer_secret:
            names.append(self.bearer_secret)
        return tuple(dict.fromkeys(names))

    def describe(self) -> str:
        if self.transport == "http":
            return str(self.url)
        return " ".join([str(self.command), *self.args])

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("name")
        defaults = ServerConfig(name=self.name, transport=self.transport,
                                command=self.command, url=self.url)
        return {k: v for k, v in data.items()
                if v is not None and (k in ("transport", "command", "url")
                                      or v != getattr(defaults, k))}

    def fingerprint(self) -> str:
        """Identifies this configuration; computed once (it keys every call's connection,
        and a configuration is not changed after it is loaded)."""
        cached = self.__dict__.get("_fingerprint")
        if cached is None:
            blob = json.dumps(self.to_dict(), sort_keys=True)
            cached = self.__dict__["_fingerprint"] = hashlib.sha256(blob.encode()).hexdigest()[:16]
        return cached


SERVERS = Sources("mcp", ServerConfig, key="servers", what="MCP server", member="tool",
                  refresh="test", valid=lambda cache: isinstance(cache.get("tools"), list),
                  indent=2)
"""``.openlam/mcp.json`` and the tool lists cached in ``.openlam/cache/mcp/``."""
cache_path = SERVERS.cache_path
read_cache = SERVERS.read_cache


def load_servers(settings: Any) -> dict[str, ServerConfig]:
    return SERVERS.load(settings)


def save_server(settings: Any, server: ServerConfig) -> None:
    SERVERS.save(settings, server.name, server.to_dict())


# -------------------------------------------------------------------- tools → actions


def risk_of(annotations: Mapping[str, Any] | None, override: str | None = None) -> Risk:
    """readOnlyHint → read, destructiveHint → destructive, anything else → external."""
    if override:
        return Risk(override)
    annotations = annotations or {}
    if annotations.get("read_only_hint") or annotations.get("readOnlyHint"):
        return Risk.read
    if annotations.get("destructive_hint") or annotations.get("destructiveHint"):
        return Risk.destructive
    return Risk.external


def action_name(server: str, tool: str) -> str:
    return f"{server}.{re.sub(r'[^A-Za-z0-9_.-]', '_', tool)}"


TEXT_OUTPUT = {"type": "object", "properties": {
    "text": {"type": "string", "description": "the tool's text content"},
    "content": {"type": "array", "description": "non-text content (images, resources)"},
}}


def tool_specs(server: ServerConfig, tools: list[dict[str, Any]], workspace: Path
               ) -> list[ActionSpec]:
    """One ActionSpec per cached tool description."""
    specs = []
    for tool in tools:
        name = str(tool["name"])
        annotations = tool.get("annotations") or {}
        risk = risk_of(annotations, server.risk.get(name))
        schema = tool.get("input_schema") or {"type": "object", "properties": {}}
        description = tool.get("description") or tool.get("title") or name
        specs.append(ActionSpec(
            name=action_name(server.name, name),
            description=" ".join(str(description).split()),
            input_schema=schema,
            output_schema=tool.get("output_schema") or TEXT_OUTPUT,
            risk=risk,
            func=_tool_caller(server, name, workspace),
            idempotent=bool(annotations.get("idempotent_hint") or risk is Risk.read),
            secrets=server.secrets,
            source=f"mcp:{server.name}",
            timeout=server.timeout,
            wants_context=True,
            validator=json_schema_validator(schema, title=action_name(server.name, name)),
        ))
    return specs


def _tool_caller(server: ServerConfig, tool: str, workspace: Path) -> Callable[..., Any]:
    async def call(ctx: ActionContext, **arguments: Any) -> Any:
        return await call_tool(server, tool, arguments, workspace=workspace, secret=ctx.secret)

    call.__name__ = f"mcp_{server.name}_{tool}"
    return call


def register(registry: Any, settings: Any = None) -> None:
    """Entry point ``openlam.plugins: mcp``: the cached tools of every configured server."""
    SERVERS.register(registry, settings, lambda loaded, server, cache: tool_specs(
        server, cache["tools"], Path(loaded.workspace)))


# ------------------------------------------------------------------------ connections


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
        self._task: asyncio.Task[None] | None = None
        self.dead = False

    async def start(self, secret: SecretLookup) -> None:
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()
        transport = self._transport(secret)
        self._task = loop.create_task(self._own(transport, ready),
                                      name=f"openlam-mcp-{self.server.name}")
        try:
            async with asyncio.timeout(self.server.startup_timeout):
                await asyncio.shield(ready)
        except TimeoutError:
            await self.close()
            raise ActionError(f"MCP server {self.server.name} did not start within "
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

            headers = {h: _need_secret(secret, s, server)
                       for h, s in server.header_secrets.items()}
            if server.bearer_secret:
                token = _need_secret(secret, server.bearer_secret, server)
                headers["Authorization"] = f"Bearer {token}"
            http = httpx2.AsyncClient(headers=headers, follow_redirects=True,
                                      timeout=httpx2.Timeout(30.0, connect=5.0))
            return streamable_http_client(str(server.url), http_client=http)
        env = dict(server.env)
        env.update({k: _need_secret(secret, s, server) for k, s in server.env_secrets.items()})
        cwd = (self.workspace / server.cwd) if server.cwd else self.workspace
        params = StdioServerParameters(command=str(server.command), args=list(server.args),
                                       env=env or None, cwd=str(cwd))
        log_dir = self.workspace / ".openlam" / LOG_DIR
        log_dir.mkdir(parents=True, exist_ok=True)
        self._errlog = (log_dir / f"mcp-{server.name}.log").open("a", encoding="utf-8")
        return stdio_client(params, errlog=self._errlog)

    async def _own(self, transport: Any, ready: asyncio.Future[None]) -> None:
        from mcp import Client
        from mcp.types import Implementation

        try:
            async with Client(transport, client_info=Implementation(name="openlam",
                                                                    version="0.1")) as client:
                self.client = client
                ready.set_result(None)
                await self._stop.wait()
        except BaseException as exc:
            if not ready.done():
                ready.set_exception(_start_error(self.server, exc))
            elif not isinstance(exc, asyncio.CancelledError):
                log.warning("MCP server %s stopped: %s", self.server.name, _unwrap(exc))
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
        task = self._task
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

    async def get(self, server: ServerConfig, workspace: Path, secret: SecretLookup
                  ) -> _Connection:
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


# -------------------------------------------------------------------------- calls


async def call_tool(server: ServerConfig, tool: str, arguments: dict[str, Any], *,
                    workspace: Path, secret: SecretLookup = lambda _n: None,
                    read_timeout: float | None = None) -> Any:
    """Call one tool; its result as JSON-like data, or ActionError naming the cause."""
    from mcp import MCPError
    from mcp_types import CONNECTION_CLOSED

    pool = _pool()
    conn = await pool.get(server, workspace, secret)
    client = conn.client
    if client is None:
        await pool.drop(conn)
        raise ActionError(f"MCP server {server.name} is not running", transient=True)
    try:
        result = await client.call_tool(tool, arguments, read_timeout_seconds=read_timeout)
    except MCPError as exc:
        if exc.code == CONNECTION_CLOSED:  # the server went away: start afresh next time
            await pool.drop(conn)
            raise ActionError(f"MCP server {server.name} closed the connection during "
                              f"{tool}; see .openlam/{LOG_DIR}/mcp-{server.name}.log",
                              transient=True) from None
        hint = ""
        if "unknown tool" in str(exc).lower():
            hint = f" (the cached tool list may be stale: run `openlam mcp test {server.name}`)"
        raise ActionError(f"MCP server {server.name} refused {tool}: {exc}{hint}") from None
    except (asyncio.CancelledError, ActionError):
        raise
    except Exception as exc:
        await pool.drop(conn)
        raise ActionError(f"MCP server {server.name} failed during {tool}: "
                          f"{_unwrap(exc)}", transient=True) from None
    return result_output(server.name, tool, result)


def result_output(server: str, tool: str, result: Any) -> Any:
    """A CallToolResult as an action's output: the structured content when the tool
    declares it, else ``{"text": …}`` (plus ``content`` for images and resources)."""
    text_parts: list[str] = []
    other: list[dict[str, Any]] = []
    for block in result.content or []:
        kind = getattr(block, "type", "")
        if kind == "text":
            text_parts.append(block.text)
        elif kind in ("image", "audio"):
            other.append({"type": kind, "mime_type": block.mime_type,
                          "bytes": len(block.data) * 3 // 4})
        elif kind == "resource":
            res = block.resource
            entry: dict[str, Any] = {"type": "resource", "uri": str(res.uri)}
            if getattr(res, "text", None) is not None:
                entry["text"] = res.text
            other.append(entry)
        elif kind == "resource_link":
            other.append({"type": "resource_link", "uri": str(block.uri), "name": block.name})
    text = "\n".join(text_parts)
    if result.is_error:
        message = text.strip() or "the server reported an error"
        raise ActionError(f"{server}.{tool} failed: {message}")
    if result.structured_content is not None:
        return result.structured_content
    output: dict[str, Any] = {"text": text}
    if other:
        output["content"] = other
    return output


async def list_tools(server: ServerConfig, *, workspace: Path,
                     secret: SecretLookup = lambda _n: None) -> dict[str, Any]:
    """Start (or reuse) the server and describe it and its tools, as cached."""
    pool = _pool()
    conn = await pool.get(server, workspace, secret)
    client = conn.client
    if client is None:
        raise ActionError(f"MCP server {server.name} is not running")
    tools: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(100):  # a paginator that never ends must not hang us
        page = await client.list_tools(cursor=cursor, cache_mode="bypass")
        tools += [_tool_dict(t) for t in page.tools]
        cursor = page.next_cursor
        if not cursor:
            break
    info = client.server_info
    return {"server": server.fingerprint(), "fetched_at": time.time(),
            "server_info": info.model_dump(exclude_none=True) if info else {},
            "protocol_version": client.protocol_version, "tools": tools}


def _tool_dict(tool: Any) -> dict[str, Any]:
    annotations = tool.annotations.model_dump(exclude_none=True) if tool.annotations else {}
    return {"name": tool.name, "title": tool.title, "description": tool.description,
            "input_schema": tool.input_schema, "output_schema": tool.output_schema,
            "annotations": annotations}


async def refresh(settings: Any, name: str, secret: SecretLookup | None = None
                  ) -> dict[str, Any]:
    """Start the server, list its tools and store them as the cache. Raises UserError."""
    return await refresh_server(settings, SERVERS.get(settings, name), secret)


async def refresh_server(settings: Any, server: ServerConfig,
                         secret: SecretLookup | None = None) -> dict[str, Any]:
    secret = secret or default_secret_lookup(settings)
    try:
        cache = await list_tools(server, workspace=Path(settings.workspace), secret=secret)
    except ActionError as exc:
        raise UserError(str(exc), _start_hint(server)) from None
    SERVERS.write_cache(settings, server.name, cache)
    return cache


def default_secret_lookup(settings: Any) -> SecretLookup:
    """Environment first, then the workspace's encrypted store (when installed)."""
    try:
        from openlam.actions.secrets import secret_lookup
    except ImportError:
        return lambda name: os.environ.get(name)
    return secret_lookup(settings)


# ------------------------------------------------------------------------- helpers


def _need_secret(secret: SecretLookup, name: str, server: ServerConfig) -> str:
    value = secret(name)
    if not value:
        raise ActionError(f"MCP server {server.name} needs the secret {name}, which is not set "
                          f"(set it with `openlam secrets set {name}` or the environment "
                          f"variable {name})")
    return value


def _unwrap(exc: BaseException) -> str:
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
        return ActionError(f"cannot start MCP server {server.name}: command "
                           f"{server.command!r} not found")
    if isinstance(exc, ActionError):
        return exc
    transient = server.transport == "http"
    return ActionError(f"cannot start MCP server {server.name} ({server.describe()}): "
                       f"{_unwrap(exc)}", transient=transient)


def _start_hint(server: ServerConfig) -> str:
    if server.transport == "http":
        return "check that the server is running at that URL and speaks streamable HTTP"
    return (f"check that `{server.describe()}` runs in a terminal; its error output is in "
            f".openlam/{LOG_DIR}/mcp-{server.name}.log")
