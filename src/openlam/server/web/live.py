"""A run's progress as it happens, for the run page: server-sent events carrying HTML
fragments that htmx's SSE extension appends (``event``) and, at the end, the run's
honest report (``finished``, which also closes the stream).

Events come from ``server.events.follow``: rebuilt from the project database, so a run
executed by any process (this server's worker or a separate ``openlam worker``) shows.
Each message has an id (its position in the run's event sequence); a browser that
reconnects sends ``Last-Event-ID`` and gets only what it has not seen."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from fastapi import Depends, Header, Request
from fastapi.responses import Response, StreamingResponse

from openlam.actions.httpkit import header_count
from openlam.server.api.common import blocking
from openlam.server.auth import Role
from openlam.server.problems import Problem
from openlam.server.web.guard import page_user, root
from openlam.server.web.render import render
from openlam.server.web.routes import router
from openlam.server.web.views import tree


def message(event: str, html: str, ident: int | None = None) -> str:
    """One SSE message; every line of the HTML is its own ``data:`` line."""
    head = f"event: {event}\n" + (f"id: {ident}\n" if ident is not None else "")
    return head + "".join(f"data: {line}\n" for line in html.splitlines() or [""]) + "\n"


async def stream(
    workforce: Any, run_id: str, prefix: str, seen: int, keepalive: float = 15.0
) -> AsyncIterator[str]:
    """The run's events after the ``seen``-th as messages, then its report; a comment
    line every ``keepalive`` seconds the run is quiet keeps proxies from closing it."""
    from openlam.server.events import follow

    queue: asyncio.Queue[Any] = asyncio.Queue()
    done = object()

    async def produce() -> None:
        try:
            async for event in follow(workforce, run_id):
                await queue.put(event)
        finally:
            await queue.put(done)

    producer = asyncio.create_task(produce())
    try:
        n = 0
        while True:
            try:
                item = await asyncio.wait_for(queue.get(), keepalive)
            except TimeoutError:
                yield ": still here\n\n"
                continue
            if item is done:
                break
            n += 1
            if n > seen:
                data = item.model_dump(mode="json")
                html = render("_event.html", e=data, root=prefix)
                html += await blocking(updates, workforce, run_id, data, prefix)
                yield message("event", html, n)
        yield message("finished", await blocking(report, workforce, run_id, prefix))
    finally:
        producer.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await producer


def updates(workforce: Any, run_id: str, e: dict[str, Any], prefix: str) -> str:
    """What else on the page an event changes, as out-of-band swaps: the plan when one
    is made, the status when the run starts, the delegation tree when a child run
    starts or ends."""
    own = e["run_id"] == run_id
    if e["kind"] == "plan" and own:
        return render("_oob.html", plan=e["steps"], root=prefix)
    if e["kind"] == "run.started" and own:
        stored = workforce.store.get_run(run_id)
        root_node = {**tree(workforce.store, stored), "status": "running"} if stored else None
        return render("_oob.html", state="running", tree_root=root_node, root=prefix)
    if e["kind"] in ("run.started", "run.finished") and not own:
        stored = workforce.store.get_run(run_id)
        if stored is not None:
            return render("_oob.html", tree_root=tree(workforce.store, stored), root=prefix)
    return ""


def report(workforce: Any, run_id: str, prefix: str) -> str:
    """The finished run's report as the run page shows it, with its final status and
    delegation tree."""
    from openlam.loop.state import Outcome

    stored = workforce.store.get_run(run_id)
    if stored is None:
        return "<p>The run is gone from the database.</p>"
    outcome = Outcome.model_validate(stored["outcome"]) if stored["outcome"] else None
    return render("_report.html", outcome=outcome, run=stored, root=prefix) + render(
        "_oob.html",
        state=stored["status"],
        tree_root=tree(workforce.store, stored),
        finished=True,
        root=prefix,
    )


@router.get("/runs/{run_id}/live")
async def live(
    request: Request,
    run_id: str,
    _me=Depends(page_user(Role.viewer)),
    last_event_id: str | None = Header(default=None),
) -> Response:
    workforce = request.app.state.workforce
    stored = await blocking(workforce.store.get_run, run_id)
    if stored is None:  # EventSource gives up on a 404 rather than retrying forever
        raise Problem(
            404,
            "Not Found",
            f"no run {run_id!r} in this workspace",
            fix="list runs on the Runs page",
        )
    seen = header_count(last_event_id) or 0
    return StreamingResponse(
        stream(workforce, stored["id"], root(request), seen, request.app.state.sse_ping),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
