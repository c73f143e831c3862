"""The web dashboard: server-rendered pages (Jinja2) made live with htmx and server-sent
events. Chosen over a single-page app because it needs no JavaScript build step (the two
htmx files ship in the wheel, vendored from their npm packages), works in CI as-is, and
every page is the same data the CLI shows, rendered on the server with the same
functions. ``router`` holds every page; ``create_app`` includes it."""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    # Imported on first use, so the page data and templates load without the server.
    if name == "router":
        from openlam.server.web import live, manage, static  # noqa: F401  (their routes join it)
        from openlam.server.web.routes import router

        return router
    raise AttributeError(name)
