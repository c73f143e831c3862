"""The web dashboard: server-rendered pages (Jinja2) made live with htmx and server-sent
events. Chosen over a single-page app because it needs no JavaScript build step (the two
htmx files ship in the wheel, vendored from their npm packages), works in CI as-is, and
every page is the same data the CLI shows, rendered on the server with the same
functions. ``router`` holds every page; ``create_app`` includes it."""

from openlam.server.web import live, static  # noqa: F401  (their routes join the router)
from openlam.server.web.routes import router

__all__ = ["router"]
