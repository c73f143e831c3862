"""The HTTP server (``openlam serve``): REST under ``/api/v1`` with server-sent events,
tokens and roles, the dashboard, and the model- and MCP-compatible APIs.
See docs/server.md."""

from openlam.server.app import create_app

__all__ = ["create_app"]
