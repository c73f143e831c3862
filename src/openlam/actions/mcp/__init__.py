"""MCP servers as a source of actions: every tool of a configured server is an action
``SERVER.tool``; a server offering resources adds ``SERVER.list_resources`` and
``SERVER.read_resource(uri)``, one offering prompts ``SERVER.get_prompt(name, arguments)``.

Where things live (all inside the workspace's state directory, ``.openlam/``):

* ``mcp.json`` — the configured servers, written by ``openlam mcp add|rm``::

      {"servers": {"time": {"transport": "stdio", "command": "mcp-server-time", "args": [],
                            "trusted": false, "grants": ["operator"]},
                   "docs": {"transport": "http", "url": "http://127.0.0.1:9000/mcp",
                            "bearer_secret": "DOCS_TOKEN"}}}

* ``cache/mcp/NAME.json`` — each server's description (tools, resources, prompts),
  refreshed by ``openlam mcp add`` and ``openlam mcp test``. Loading the registry reads
  only these files: no server is started just because ``openlam`` ran.

Servers start lazily on the first call and are then reused: one session per server per
event loop (:mod:`.connection`). Risk tiers are :mod:`openlam.actions.risk`'s: a server
the user has not vouched for gets ``external`` for every tool whatever its annotations
say (a ``destructiveHint`` may raise that), and ``--risk TOOL=TIER`` sets one tool's tier.
Tools that can only run as MCP *tasks* (``execution.taskSupport: required``) are not
offered: OpenLAM calls tools directly.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from openlam.actions import risk
from openlam.actions.mcp.calls import (
    call_tool,
    default_secret_lookup,
    describe_server,
    get_prompt,
    list_resources,
    list_tools,
    read_resource,
    refresh,
    refresh_server,
    result_output,
)
from openlam.actions.mcp.config import (
    LOG_DIR,
    SERVERS,
    ServerConfig,
    cache_path,
    load_servers,
    read_cache,
    save_server,
)
from openlam.actions.mcp.connection import (
    _pool,
    aclose_all,
    close_all,
    running_servers,
    shutdown,
)
from openlam.actions.schema_text import with_details
from openlam.actions.spec import ActionContext, ActionSpec, Risk, json_schema_validator

__all__ = [
    "LOG_DIR",
    "SERVERS",
    "ServerConfig",
    "_pool",
    "aclose_all",
    "action_name",
    "cache_path",
    "call_tool",
    "close_all",
    "default_secret_lookup",
    "describe_server",
    "get_prompt",
    "list_resources",
    "list_tools",
    "load_servers",
    "read_cache",
    "read_resource",
    "refresh",
    "refresh_server",
    "register",
    "result_output",
    "running_servers",
    "save_server",
    "server_specs",
    "shutdown",
    "tool_names",
    "tool_specs",
    "tool_tier",
    "unusable_tools",
]

TEXT_OUTPUT = {
    "type": "object",
    "properties": {
        "text": {"type": "string", "description": "the tool's text content"},
        "content": {"type": "array", "description": "non-text content (images, resources)"},
    },
}
RESOURCE_OUTPUT = {
    "type": "object",
    "properties": {
        "text": {"type": "string", "description": "the text of the resource's contents"},
        "contents": {
            "type": "array",
            "description": "each content: uri, mime_type, text or "
            "bytes (the size of binary content)",
        },
    },
}
MAX_LISTED = 10


def action_name(server: str, tool: str) -> str:
    return f"{server}.{re.sub(r'[^A-Za-z0-9_.-]', '_', tool)}"


def tool_tier(server: ServerConfig, tool: dict[str, Any]) -> risk.Tier:
    chosen = server.risk.get(str(tool["name"]))
    if chosen:
        return risk.chosen_by_user(chosen)
    return risk.tool_tier(tool.get("annotations"), trusted=server.trusted)


def tool_names(cache: dict[str, Any]) -> list[str]:
    return [str(t["name"]) for t in cache.get("tools", [])]


def unusable_tools(cache: dict[str, Any]) -> list[str]:
    """Tools that only run as MCP tasks, which OpenLAM does not use: not offered."""
    return [str(t["name"]) for t in cache.get("tools", []) if t.get("task_support") == "required"]


def tool_specs(
    server: ServerConfig, tools: list[dict[str, Any]], workspace: Path
) -> list[ActionSpec]:
    """One ActionSpec per cached tool description that can be called."""
    specs = []
    for tool in tools:
        if tool.get("task_support") == "required":
            continue
        name = str(tool["name"])
        annotations = tool.get("annotations") or {}
        tier = tool_tier(server, tool)
        schema = tool.get("input_schema") or {"type": "object", "properties": {}}
        description = " ".join(str(tool.get("description") or tool.get("title") or name).split())
        believed = server.trusted or name in server.risk
        spec = ActionSpec(
            name=action_name(server.name, name),
            description=with_details(description, schema),
            input_schema=schema,
            output_schema=tool.get("output_schema") or TEXT_OUTPUT,
            risk=tier.risk,
            func=_caller(
                f"mcp_{server.name}_{name}",
                lambda ctx, args, tool=name: call_tool(
                    server, tool, args, workspace=workspace, secret=ctx.secret
                ),
            ),
            idempotent=tier.risk is Risk.read
            or bool(believed and annotations.get("idempotent_hint")),
            secrets=server.secrets,
            source=f"mcp:{server.name}",
            timeout=server.timeout,
            wants_context=True,
            validator=json_schema_validator(schema, title=action_name(server.name, name)),
        )
        specs.append(risk.classify(spec, tier, egress=risk.takes_url(schema)))
    return specs


def server_specs(server: ServerConfig, cache: dict[str, Any], workspace: Path) -> list[ActionSpec]:
    """Its tools, plus actions for its resources and prompts when it offers them."""
    specs = tool_specs(server, cache["tools"], workspace)
    taken = {s.name for s in specs}
    extra: list[ActionSpec] = []
    if cache.get("resources_offered"):
        extra += _resource_specs(server, cache, workspace)
    if cache.get("prompts"):
        extra.append(_prompt_spec(server, cache["prompts"], workspace))
    return specs + [s for s in extra if s.name not in taken]


def _resource_specs(
    server: ServerConfig, cache: dict[str, Any], workspace: Path
) -> list[ActionSpec]:
    known = [r["uri"] for r in cache.get("resources") or []][:MAX_LISTED]
    templates = [t["uri_template"] for t in cache.get("resource_templates") or []][:MAX_LISTED]
    hint = ""
    if known:
        hint += f" Known URIs: {', '.join(known)}"
    if templates:
        hint += f" URI templates: {', '.join(templates)}"
    reading = risk.Tier(Risk.read, "reading a resource sends the server only its URI")
    read_schema = {
        "type": "object",
        "properties": {"uri": {"type": "string", "description": "the resource's URI"}},
        "required": ["uri"],
        "additionalProperties": False,
    }
    read = ActionSpec(
        name=f"{server.name}.read_resource",
        description=f"Read a resource of the MCP server {server.name} by its URI.{hint}",
        input_schema=read_schema,
        output_schema=RESOURCE_OUTPUT,
        risk=Risk.read,
        func=_caller(
            f"mcp_{server.name}_read_resource",
            lambda ctx, args: read_resource(
                server, args["uri"], workspace=workspace, secret=ctx.secret
            ),
        ),
        idempotent=True,
        secrets=server.secrets,
        source=f"mcp:{server.name}",
        timeout=server.timeout,
        wants_context=True,
        validator=json_schema_validator(read_schema, title=f"{server.name}.read_resource"),
    )
    list_schema = {"type": "object", "properties": {}, "additionalProperties": False}
    listing = ActionSpec(
        name=f"{server.name}.list_resources",
        description=f"List the resources (uri, name, description, mime_type) and resource "
        f"templates the MCP server {server.name} offers now.",
        input_schema=list_schema,
        output_schema={
            "type": "object",
            "properties": {"resources": {"type": "array"}, "templates": {"type": "array"}},
        },
        risk=Risk.read,
        func=_caller(
            f"mcp_{server.name}_list_resources",
            lambda ctx, _args: list_resources(server, workspace=workspace, secret=ctx.secret),
        ),
        idempotent=True,
        secrets=server.secrets,
        source=f"mcp:{server.name}",
        timeout=server.timeout,
        wants_context=True,
        validator=json_schema_validator(list_schema, title=f"{server.name}.list_resources"),
    )
    return [
        risk.classify(read, reading, egress=False),
        risk.classify(listing, reading, egress=False),
    ]


def _prompt_spec(
    server: ServerConfig, prompts: list[dict[str, Any]], workspace: Path
) -> ActionSpec:
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string", "enum": [p["name"] for p in prompts]},
            "arguments": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "description": "the prompt's arguments by name",
            },
        },
        "required": ["name"],
        "additionalProperties": False,
    }
    listed = "; ".join(
        p["name"]
        + (f"({', '.join(a['name'] for a in p['arguments'])})" if p["arguments"] else "")
        + (f": {p['description']}" if p.get("description") else "")
        for p in prompts[:MAX_LISTED]
    )
    spec = ActionSpec(
        name=f"{server.name}.get_prompt",
        description=with_details(
            f"Get a prompt template of the MCP server {server.name}, filled with arguments", schema
        )
        + f" Prompts: {listed}",
        input_schema=schema,
        output_schema={
            "type": "object",
            "properties": {"text": {"type": "string"}, "messages": {"type": "array"}},
        },
        risk=Risk.read,
        func=_caller(
            f"mcp_{server.name}_get_prompt",
            lambda ctx, args: get_prompt(
                server, args["name"], args.get("arguments"), workspace=workspace, secret=ctx.secret
            ),
        ),
        idempotent=True,
        secrets=server.secrets,
        source=f"mcp:{server.name}",
        timeout=server.timeout,
        wants_context=True,
        validator=json_schema_validator(schema, title=f"{server.name}.get_prompt"),
    )
    return risk.classify(
        spec, risk.Tier(Risk.read, "a prompt template only returns text"), egress=False
    )


def _caller(name: str, send: Callable[[ActionContext, dict[str, Any]], Any]) -> Callable[..., Any]:
    async def call(ctx: ActionContext, **arguments: Any) -> Any:
        return await send(ctx, arguments)

    call.__name__ = name
    return call


def register(registry: Any, settings: Any = None) -> None:
    """Entry point ``openlam.plugins: mcp``: the cached tools of every configured server."""

    def specs(loaded: Any, server: ServerConfig, cache: dict[str, Any]) -> list[ActionSpec]:
        names = tool_names(cache)
        for tool in sorted(set(server.risk) - set(names)):
            close = difflib.get_close_matches(tool, names, n=2, cutoff=0.6)
            registry.load_errors.append(
                f"MCP server {server.name}: the risk set for {tool} names no tool"
                + (f" (did you mean {', '.join(close)}?)" if close else "")
            )
        return server_specs(server, cache, Path(loaded.workspace))

    SERVERS.register(registry, settings, specs)
