"""Configured MCP servers: ``.openlam/mcp.json`` and each server's description (tools,
resources, prompts) cached in ``.openlam/cache/mcp/NAME.json``."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from openlam.actions.sources import SourceConfig, Sources
from openlam.errors import UserError

LOG_DIR = "logs"
STARTUP_TIMEOUT = 30.0
SDK_MESSAGE_LIMIT = 1024 * 1024
"""What the SDK's streamable HTTP client accepts in one server-sent event by default."""


@dataclass
class ServerConfig(SourceConfig):
    """One configured MCP server."""

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
    timeout: float | None = None
    """Seconds one tool call may take (default: the step timeout)."""
    startup_timeout: float = STARTUP_TIMEOUT
    max_message_bytes: int = SDK_MESSAGE_LIMIT
    """Largest message accepted from an HTTP server (one tool result)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.transport == "stdio" and not self.command:
            raise UserError(
                f"MCP server {self.name}: a stdio server needs a command",
                f"openlam mcp add {self.name} -- COMMAND ARGS…",
            )
        if self.transport == "http" and not self.url:
            raise UserError(
                f"MCP server {self.name}: an HTTP server needs a URL",
                f"openlam mcp add {self.name} --url URL",
            )
        if self.transport not in ("stdio", "http"):
            raise UserError(
                f"MCP server {self.name}: unknown transport {self.transport!r}",
                "use stdio (a command) or http (a URL)",
            )

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

    def fingerprint(self) -> str:
        """Identifies how the server is reached; computed once (it keys every call's
        connection, and a configuration is not changed after it is loaded). What the user
        decided about trust, tiers and access does not change the connection."""
        cached = self.__dict__.get("_fingerprint")
        if cached is None:
            reach = {
                k: v for k, v in self.to_dict().items() if k not in ("risk", "trusted", "grants")
            }
            blob = json.dumps(reach, sort_keys=True)
            cached = self.__dict__["_fingerprint"] = hashlib.sha256(blob.encode()).hexdigest()[:16]
        return cached


def tools_of(cache: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (str(t["name"]), str(t.get("description") or t.get("title") or "")) for t in cache["tools"]
    ]


SERVERS = Sources(
    "mcp",
    ServerConfig,
    key="servers",
    what="MCP server",
    member="tool",
    refresh="test",
    valid=lambda cache: isinstance(cache.get("tools"), list),
    indent=2,
    members=tools_of,
)
"""``.openlam/mcp.json`` and the server descriptions cached in ``.openlam/cache/mcp/``."""
cache_path = SERVERS.cache_path
read_cache = SERVERS.read_cache


def load_servers(settings: Any) -> dict[str, ServerConfig]:
    return SERVERS.load(settings)


def save_server(settings: Any, server: ServerConfig) -> None:
    SERVERS.save(settings, server.name, server.to_dict())
