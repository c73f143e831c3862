"""A stdio MCP server for the own suite: a key-value store kept in the JSON file named
by its one argument, so that a checker can read the end state.

    python -m openlam.learning.evals.own.mcp_peer STATE.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main() -> None:
    from mcp.server.mcpserver import MCPServer
    from mcp.types import ToolAnnotations

    state = Path(sys.argv[1])
    server = MCPServer("openlam-eval-kv")

    def load() -> dict[str, str]:
        return json.loads(state.read_text()) if state.exists() else {}

    @server.tool(annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False))
    def kv_set(key: str, value: str) -> str:
        """Store a value under a key (replacing any earlier value)."""
        data = load()
        data[key] = value
        state.write_text(json.dumps(data))
        return f"stored {key}"

    @server.tool(annotations=ToolAnnotations(read_only_hint=True))
    def kv_get(key: str) -> str:
        """The value stored under a key ('' if none)."""
        return load().get(key, "")

    server.run("stdio")


if __name__ == "__main__":
    main()
