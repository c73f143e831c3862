"""The workforce behind other protocols: OpenAI- and Ollama-compatible chat APIs (the
workforce answers as a model) and an MCP server (any MCP client hands it goals)."""

from __future__ import annotations

from fastapi import APIRouter


def routers() -> list[APIRouter]:
    """The compat routers for one app (the MCP router is made per app: it owns a
    session manager that runs for the app's lifetime)."""
    from openlam.server.compat import mcp, ollama, openai

    return [openai.router, ollama.router, mcp.http_router()]
