"""The HTTP server's application: REST under ``/api/v1``, the dashboard, the model- and
MCP-compatible APIs — one FastAPI app over one workspace.

The app never runs a goal inside a request handler: a goal is put on a queue and its
run id returned at once; the process's own queue worker (``run_worker``), or any
``openlam worker`` sharing the database, executes it.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI

from openlam import __version__ as VERSION
from openlam.config import Settings, load_settings

log = logging.getLogger("openlam.server")


def _routers() -> list[APIRouter]:
    """Every router of the app, in one place (dashboard and compat APIs add theirs)."""
    from openlam.server import compat, web
    from openlam.server.api import (
        actions,
        approvals,
        audit,
        goals,
        health,
        hooks,
        learning,
        org,
        runs,
        schedules,
        session,
    )

    return [
        health.router,
        session.router,
        goals.router,
        runs.router,
        approvals.router,
        audit.router,
        org.router,
        actions.router,
        schedules.router,
        learning.router,
        hooks.router,
        *compat.routers(),
        web.router,
    ]


def create_app(
    workspace: str | Path | None = None,
    *,
    run_worker: bool = True,
    settings: Settings | None = None,
) -> Any:
    """The server app for ``workspace``. Its lifespan opens the workspace's
    :class:`openlam.Workforce` (``app.state.workforce``) and, with ``run_worker``, runs
    this process's own queue worker; without it, runs wait for separate workers."""
    from openlam.runtime.boot import check_settings
    from openlam.runtime.worker import worker_settings
    from openlam.server import auth, problems
    from openlam.server.body_limit import BodyLimit
    from openlam.server.compat.work import reply_limit
    from openlam.server.credentials import Credentials
    from openlam.server.events import ping_seconds
    from openlam.workforce import Workforce

    settings = settings or load_settings(workspace)
    server_conf = (settings.raw or {}).get("server") or {}

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        worker = None
        if run_worker:  # on its own thread and loop: runs never hold up a request
            from openlam.runtime.worker import Worker, WorkerThread

            worker = WorkerThread(Worker(settings, kind="serve", embedded=True, say=log.info))
            app.state.workforce = Workforce.attached(await worker.start())
        else:
            app.state.workforce = Workforce(settings=settings)
        app.state.worker = worker.worker if worker is not None else None
        try:
            yield
        finally:
            if worker is not None:
                await worker.stop()

    app = FastAPI(
        title="OpenLAM",
        version=VERSION,
        lifespan=lifespan,
        description="A workforce of agents that plans, acts through real tools, "
        "verifies and reports honestly. Errors are RFC 9457 problem "
        "JSON. Authenticate with `Authorization: Bearer <token>` "
        "(`openlam tokens create NAME --role ROLE`).",
        docs_url="/api/docs",
        redoc_url=None,
        openapi_url="/api/v1/openapi.json",
    )
    app.state.settings = settings
    app.state.run_worker = run_worker
    app.state.sse_ping = ping_seconds(settings)  # keep-alive comments of idle event streams
    # Bad settings are named now, with their fix, not at a request or in the lifespan.
    reply_limit(settings)
    check_settings(settings)
    if run_worker:
        worker_settings(settings)
    credentials = Credentials(_store_engine(settings))
    app.state.credentials = credentials
    auth.configure(credentials, secure_cookies=bool(server_conf.get("secure_cookies")))
    problems.install(app)
    app.add_middleware(BodyLimit)
    for router in _routers():
        app.include_router(router)
    return app


def _store_engine(settings: Settings) -> Any:
    """The project database's engine, its schema brought up to date."""
    from openlam.memory.store import Store

    return Store(settings.app_database_url).engine
