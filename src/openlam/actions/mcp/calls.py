"""Talking to an MCP server: calling a tool, reading a resource, getting a prompt, and
describing the server (what ``openlam mcp add|test`` caches)."""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from openlam.actions.mcp.config import LOG_DIR, SERVERS, ServerConfig
from openlam.actions.mcp.connection import SecretLookup, _Connection, _pool, start_hint, unwrap
from openlam.errors import ActionError, UserError

MAX_PAGES = 100  # a paginator that never ends must not hang us
SESSION_END_GRACE = 0.3  # seconds for a session whose transport broke to notice it
PING_TIMEOUT = 3.0  # seconds a live session takes to answer a check
_TOO_LARGE = re.compile(r"exceeded the (\d+) byte limit")


async def call_tool(
    server: ServerConfig,
    tool: str,
    arguments: dict[str, Any],
    *,
    workspace: Path,
    secret: SecretLookup = lambda _n: None,
    read_timeout: float | None = None,
) -> Any:
    """Call one tool; its result as JSON-like data, or ActionError naming the cause."""
    result = await _request(
        server,
        tool,
        workspace,
        secret,
        lambda client: client.call_tool(tool, arguments, read_timeout_seconds=read_timeout),
    )
    return result_output(server.name, tool, result)


async def read_resource(
    server: ServerConfig, uri: str, *, workspace: Path, secret: SecretLookup = lambda _n: None
) -> dict[str, Any]:
    """A resource's contents: ``{"text": …, "contents": [{uri, mime_type, text|bytes}]}``."""
    result = await _request(
        server,
        f"reading {uri}",
        workspace,
        secret,
        lambda client: client.read_resource(uri, cache_mode="bypass"),
    )
    contents: list[dict[str, Any]] = []
    for item in result.contents:
        entry: dict[str, Any] = {"uri": str(item.uri), "mime_type": item.mime_type}
        if getattr(item, "text", None) is not None:
            entry["text"] = item.text
        else:
            entry["bytes"] = len(getattr(item, "blob", "") or "") * 3 // 4
        contents.append(entry)
    text = "\n".join(c["text"] for c in contents if "text" in c)
    return {"text": text, "contents": contents}


async def list_resources(
    server: ServerConfig, *, workspace: Path, secret: SecretLookup = lambda _n: None
) -> dict[str, Any]:
    """The server's resources and resource templates, as they are now."""

    async def both(client: Any) -> dict[str, Any]:
        return {
            "resources": await _pages(client.list_resources, _resource_dict),
            "templates": await _pages(client.list_resource_templates, _template_dict),
        }

    return await _request(server, "listing resources", workspace, secret, both)


async def get_prompt(
    server: ServerConfig,
    name: str,
    arguments: dict[str, str] | None,
    *,
    workspace: Path,
    secret: SecretLookup = lambda _n: None,
) -> dict[str, Any]:
    """A prompt's messages: ``{"text": …, "messages": [{role, text}]}``."""
    result = await _request(
        server,
        f"prompt {name}",
        workspace,
        secret,
        lambda client: client.get_prompt(name, arguments or None),
    )
    messages = [
        {"role": m.role, "text": getattr(m.content, "text", "") or ""} for m in result.messages
    ]
    return {
        "text": "\n\n".join(m["text"] for m in messages),
        "messages": messages,
        "description": result.description,
    }


async def _request(
    server: ServerConfig,
    what: str,
    workspace: Path,
    secret: SecretLookup,
    send: Callable[[Any], Awaitable[Any]],
) -> Any:
    """One request on the server's shared session. A failure of this request is this
    request's alone: the session is dropped only when the server is really gone, so
    concurrent calls to the same server go on."""
    from mcp_types import CONNECTION_CLOSED

    from mcp import MCPError

    pool = _pool()
    conn = await pool.get(server, workspace, secret)
    client = conn.client
    if client is None:
        await pool.drop(conn)
        raise ActionError(f"MCP server {server.name} is not running", transient=True)
    try:
        return await send(client)
    except MCPError as exc:
        too_large = _TOO_LARGE.search(str(exc))
        if too_large:
            raise ActionError(_too_large_message(server, what, int(too_large.group(1)))) from None
        if exc.code == CONNECTION_CLOSED:
            raise await _lost(pool, conn, server, what, str(exc)) from None
        hint = ""
        if "unknown tool" in str(exc).lower():
            hint = f" (the cached tool list may be stale: run `openlam mcp test {server.name}`)"
        raise ActionError(f"MCP server {server.name} refused {what}: {exc}{hint}") from None
    except (asyncio.CancelledError, ActionError):
        raise
    except Exception as exc:
        raise await _lost(pool, conn, server, what, unwrap(exc)) from None


async def _lost(
    pool: Any, conn: _Connection, server: ServerConfig, what: str, detail: str
) -> ActionError:
    """The answer to one request did not arrive. If the session itself has ended (the
    server exited, the connection broke, it no longer answers a request), drop it so the next
    call starts afresh; otherwise keep it for the calls still running on it."""
    if not await _alive(conn):
        await pool.drop(conn)
        where = (
            f"; its error output is in .openlam/{LOG_DIR}/mcp-{server.name}.log"
            if server.transport == "stdio"
            else ""
        )
        return ActionError(
            f"MCP server {server.name} closed the connection during {what}{where}", transient=True
        )
    return ActionError(
        f"MCP server {server.name} did not deliver its answer to {what}: {detail}", transient=True
    )


async def _alive(conn: _Connection) -> bool:
    task = conn.task
    if task is not None and not task.done():
        await asyncio.wait([task], timeout=SESSION_END_GRACE)
    client = conn.client
    if conn.dead or client is None:
        return False
    try:  # a cheap request every protocol version has (ping is gone as of 2026-07-28)
        async with asyncio.timeout(PING_TIMEOUT):
            await client.list_tools(cache_mode="bypass")
    except Exception:
        return False
    return True


def _too_large_message(server: ServerConfig, what: str, limit: int) -> str:
    size = f"{limit / 1024 / 1024:g} MiB" if limit % 1024 == 0 else f"{limit} bytes"
    return (
        f"the MCP server {server.name}'s result for {what} is larger than the {size} "
        "message limit of the MCP HTTP transport; ask for less (a narrower query, one "
        f"page), or raise the limit for this server: `openlam mcp add {server.name} "
        f'--url {server.url} --max-message-mb N --replace` (or "max_message_bytes" in '
        ".openlam/mcp.json)"
    )


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
            other.append(
                {"type": kind, "mime_type": block.mime_type, "bytes": len(block.data) * 3 // 4}
            )
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


async def describe_server(
    server: ServerConfig, *, workspace: Path, secret: SecretLookup = lambda _n: None
) -> dict[str, Any]:
    """Start (or reuse) the server and describe it — tools, resources, prompts — as cached."""
    pool = _pool()
    conn = await pool.get(server, workspace, secret)
    client = conn.client
    if client is None:
        raise ActionError(f"MCP server {server.name} is not running")
    caps = client.server_capabilities
    tools = await _pages(client.list_tools, _tool_dict) if caps.tools is not None else []
    resources: list[dict[str, Any]] = []
    templates: list[dict[str, Any]] = []
    if caps.resources is not None:
        resources = await _pages(client.list_resources, _resource_dict)
        templates = await _pages(client.list_resource_templates, _template_dict)
    prompts = await _pages(client.list_prompts, _prompt_dict) if caps.prompts is not None else []
    info = client.server_info
    return {
        "server": server.fingerprint(),
        "fetched_at": time.time(),
        "server_info": info.model_dump(exclude_none=True) if info else {},
        "protocol_version": client.protocol_version,
        "tools": tools,
        "resources_offered": bool(resources or templates),
        "resources": resources,
        "resource_templates": templates,
        "prompts": prompts,
    }


list_tools = describe_server


async def _pages(
    fetch: Callable[..., Awaitable[Any]], convert: Callable[[Any], dict[str, Any]]
) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(MAX_PAGES):
        page = await fetch(cursor=cursor, cache_mode="bypass")
        for field in ("tools", "resources", "resource_templates", "prompts"):
            if hasattr(page, field):
                items += [convert(x) for x in getattr(page, field)]
                break
        cursor = page.next_cursor
        if not cursor:
            break
    return items


def _tool_dict(tool: Any) -> dict[str, Any]:
    annotations = tool.annotations.model_dump(exclude_none=True) if tool.annotations else {}
    execution = getattr(tool, "execution", None)
    return {
        "name": tool.name,
        "title": tool.title,
        "description": tool.description,
        "input_schema": tool.input_schema,
        "output_schema": tool.output_schema,
        "annotations": annotations,
        "task_support": getattr(execution, "task_support", None) if execution else None,
    }


def _resource_dict(res: Any) -> dict[str, Any]:
    return {
        "uri": str(res.uri),
        "name": res.name,
        "description": res.description,
        "mime_type": res.mime_type,
    }


def _template_dict(tpl: Any) -> dict[str, Any]:
    return {"uri_template": tpl.uri_template, "name": tpl.name, "description": tpl.description}


def _prompt_dict(prompt: Any) -> dict[str, Any]:
    return {
        "name": prompt.name,
        "description": prompt.description,
        "arguments": [
            {"name": a.name, "description": a.description, "required": bool(a.required)}
            for a in prompt.arguments or []
        ],
    }


async def refresh(settings: Any, name: str, secret: SecretLookup | None = None) -> dict[str, Any]:
    """Start the server, describe it and store that as the cache. Raises UserError."""
    return await refresh_server(settings, SERVERS.get(settings, name), secret)


async def refresh_server(
    settings: Any, server: ServerConfig, secret: SecretLookup | None = None
) -> dict[str, Any]:
    secret = secret or default_secret_lookup(settings)
    try:
        cache = await describe_server(server, workspace=Path(settings.workspace), secret=secret)
    except ActionError as exc:
        raise UserError(str(exc), start_hint(server)) from None
    SERVERS.write_cache(settings, server.name, cache)
    return cache


def default_secret_lookup(settings: Any) -> SecretLookup:
    """Environment first, then the workspace's encrypted store (when installed)."""
    try:
        from openlam.actions.secrets import secret_lookup
    except ImportError:
        return lambda name: os.environ.get(name)
    return secret_lookup(settings)
