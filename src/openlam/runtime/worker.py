"""``openlam worker``: a long-lived process that runs queued goals.

A worker is a DBOS executor that listens to the OpenLAM queues (all, or those named),
and besides running what it dequeues it:

* sweeps every ``heartbeat_seconds`` for executors that are provably dead and hands
  their runs back to the queues, so a SIGKILLed worker's runs are taken over within
  about ``lease_seconds`` (at once when it ran on this machine);
* queues, every ``[runtime] requeue_seconds`` (30), runs that were listed as submitted but never
  reached their queue (the submitting process was killed between the two steps);
* polls the IMAP and folder triggers, and serves ``GET /health`` and webhook triggers
  (``POST /hooks/NAME``) on ``--port`` (127.0.0.1 by default);
* on SIGTERM or Ctrl-C drains: takes no new run, lets the steps in flight finish for up
  to ``drain_seconds``, then leaves the rest to recovery — no step runs twice.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from openlam.actions.httpkit import header_count
from openlam.config import Settings, seconds
from openlam.runtime import boot, process
from openlam.runtime.admin import REQUEUE_AFTER
from openlam.runtime.triggers import MAX_PAYLOAD, Trigger, Triggers
from openlam.workforce import submit_goal

log = logging.getLogger("openlam.worker")
DRAIN_SECONDS = 30.0
CANCEL_SECONDS = 10.0  # cancelled runs have this long to unwind before the process stops


def worker_settings(settings: Any) -> tuple[float, float]:
    """A worker's own settings, checked: (seconds between sweeps for runs whose
    submitter died, seconds a stop waits for runs in flight)."""
    return (
        seconds(settings, "runtime", "requeue_seconds", REQUEUE_AFTER),
        seconds(settings, "runtime", "drain_seconds", DRAIN_SECONDS, zero_ok=True),
    )


class Worker:
    def __init__(
        self,
        settings: Settings,
        *,
        queues: list[str] | None = None,
        concurrency: int | None = None,
        port: int | None = None,
        host: str = "127.0.0.1",
        say: Callable[[str], None] = print,
        kind: str = "worker",
        embedded: bool = False,
    ) -> None:
        """``embedded``: inside another program's event loop (``openlam serve``): it
        leaves the signals to that program (call :meth:`stop`) and, stopping, cancels
        only the tasks started since it started (its runs), not the program's own."""
        self.settings = settings
        self.kind = kind
        self.embedded = embedded
        self.up = threading.Event()  # set once started (or failed to start): any thread
        self.ready = asyncio.Event()  # set once started, on the worker's own loop
        self.spared: set[asyncio.Task[Any]] = set()  # embedded: the program's own tasks
        self.queues = queues
        self.concurrency = concurrency
        self.port = port
        self.host = host
        self.say = say
        self.stopping = asyncio.Event()
        self.rt: process.Runtime | None = None
        self.http: ThreadingHTTPServer | None = None
        self.started = time.time()
        self.requeue_every, self.drain_limit = REQUEUE_AFTER, DRAIN_SECONDS

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        if self.embedded:
            self.spared = set(asyncio.all_tasks())
        else:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.stopping.set)
        try:
            # The worker's own settings, checked before it starts anything.
            self.requeue_every, self.drain_limit = worker_settings(self.settings)
            rt = self.rt = boot.start(
                self.settings,
                kind=self.kind,
                listen=self.queues,
                worker_concurrency=self.concurrency,
                submit=submit_goal,
            )
        finally:
            self.up.set()
        self.ready.set()
        self.say(
            f"worker {rt.executor_id} listening to "
            f"{', '.join(self.queues) if self.queues else 'every queue'}"
        )
        if rt.recovering:
            self.say(f"took over {len(rt.recovering)} run(s) of stopped processes")
        if self.port is not None:
            self.http = self.serve_http(loop)
        tasks = [
            asyncio.create_task(self.sweep()),
            asyncio.create_task(self.queue_unqueued()),
            asyncio.create_task(self.poll_triggers()),
        ]
        await self.stopping.wait()
        self.say("stopping: finishing the steps in flight")
        for task in tasks:
            task.cancel()
        await self.drain()

    def stop(self) -> None:
        """Drain and stop (what SIGTERM does to a standalone worker). The task calling
        it is spared (it waits for the worker to stop)."""
        current = asyncio.current_task()
        if current is not None:
            self.spared.add(current)
        self.stopping.set()

    async def sweep(self) -> None:
        rt = self.rt
        assert rt is not None
        while True:
            await asyncio.sleep(rt.executors.lease.heartbeat_seconds)
            try:
                taken = await asyncio.to_thread(process.recover_dead, rt)
            except Exception as exc:  # the database is briefly away: next time
                log.warning("sweep failed: %s", exc)
                continue
            if taken:
                self.say(f"took over {len(taken)} run(s) of a stopped process: " + ", ".join(taken))

    async def queue_unqueued(self) -> None:
        """Queue the runs whose submitting process died before it queued them."""
        from openlam.runtime.admin import queue_unqueued

        rt = self.rt
        assert rt is not None
        every = self.requeue_every
        while True:
            await asyncio.sleep(every)
            try:
                queued = await asyncio.to_thread(queue_unqueued, self.settings, rt.store, every)
            except Exception as exc:  # the database is briefly away: next time
                log.warning("looking for unqueued runs failed: %s", exc)
                continue
            if queued:
                self.say(
                    f"queued {len(queued)} run(s) whose submitter stopped: " + ", ".join(queued)
                )

    async def poll_triggers(self) -> None:
        from openlam.runtime.triggers import folder_events, imap_events, start_run

        rt = self.rt
        assert rt is not None
        store = Triggers(rt.store.engine)
        due: dict[str, float] = {}
        while True:
            await asyncio.sleep(0.5)
            for trigger in await asyncio.to_thread(store.list):
                if trigger.kind == "webhook" or due.get(trigger.name, 0) > time.time():
                    continue
                due[trigger.name] = time.time() + trigger.poll_seconds
                try:
                    events = (
                        folder_events(trigger, rt.settings.workspace)
                        if trigger.kind == "folder"
                        else await imap_events(trigger, rt)
                    )
                    for event in events:
                        if await start_run(rt, trigger, event):
                            self.say(f"trigger {trigger.name}: started a run")
                    if trigger.kind == "imap":
                        await asyncio.to_thread(store.save_state, trigger)
                except Exception as exc:  # a broken mailbox must not stop the worker
                    log.warning("trigger %s failed: %s", trigger.name, exc)

    async def drain(self) -> None:
        """Take no new run or step; wait for steps in flight (bounded); stop."""
        rt = self.rt
        assert rt is not None
        rt.draining = True
        limit = self.drain_limit
        deadline = time.monotonic() + limit
        while rt.inflight and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if rt.inflight:
            self.say(
                f"{rt.inflight} step(s) still running after {limit:g} s: left to "
                "recovery (they run again on another worker)"
            )
        if self.http is not None:
            self.http.shutdown()
        current = asyncio.current_task()
        running = [t for t in asyncio.all_tasks() if t is not current and t not in self.spared]
        for task in running:
            task.cancel()  # a cancelled run stays PENDING: another worker resumes it
        if running:
            _done, stuck = await asyncio.wait(running, timeout=CANCEL_SECONDS)
            if stuck:
                log.warning(
                    "%d task(s) did not stop within %g s of being cancelled",
                    len(stuck),
                    CANCEL_SECONDS,
                )
        await process.close_plugins()
        await asyncio.to_thread(process.stop)
        self.say("stopped")

    # -- HTTP: health and webhooks ----------------------------------------------------

    def health(self) -> dict[str, Any]:
        rt = self.rt
        assert rt is not None
        return {
            "status": "draining" if rt.draining else "ok",
            "executor": rt.executor_id,
            "steps_in_flight": rt.inflight,
            "waiting_for_people": len(rt.waiting),
            "uptime_seconds": round(time.time() - self.started, 1),
        }

    def serve_http(self, loop: asyncio.AbstractEventLoop) -> ThreadingHTTPServer:
        worker = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.rstrip("/") in ("/health", "/healthz"):
                    self.reply(200, worker.health())
                else:
                    self.reply(404, {"error": "not found; try GET /health"})

            def do_POST(self) -> None:
                if not self.path.startswith("/hooks/"):
                    self.reply(404, {"error": "webhooks are at POST /hooks/NAME"})
                    return
                declared = header_count(self.headers.get("content-length") or "0")
                if declared is None or self.headers.get("transfer-encoding"):
                    self.reply(411, {"error": "send the body with a Content-Length"})
                    return
                if declared > MAX_PAYLOAD:  # refused unread, as webhook_event would
                    self.reply(413, {"error": f"the payload is larger than {MAX_PAYLOAD} bytes"})
                    return
                body = self.rfile.read(declared)
                code, answer = asyncio.run_coroutine_threadsafe(
                    fire_webhook(worker.rt, self.path[len("/hooks/") :], dict(self.headers), body),
                    loop,
                ).result(timeout=60)
                self.reply(code, answer)

            def reply(self, code: int, data: dict[str, Any]) -> None:
                payload = json.dumps(data).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                del format, args  # quiet: the worker reports what matters itself

        server = ThreadingHTTPServer((self.host, self.port or 0), Handler)
        self.port = server.server_address[1]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.say(
            f"health and webhooks at http://{self.host}:{self.port}/ "
            "(GET /health, POST /hooks/NAME)"
        )
        return server


class WorkerThread:
    """A worker on a thread and event loop of its own, inside another program
    (``openlam serve``): the synchronous parts of its runs never hold up the program's
    loop (an API request waits a thread switch, not a run's step)."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.loop: asyncio.AbstractEventLoop | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._main, name="openlam-worker", daemon=True)

    def _main(self) -> None:
        async def run() -> None:
            self.loop = asyncio.get_running_loop()
            await self.worker.run()

        try:
            asyncio.run(run())
        except BaseException as exc:  # reported by start() or stop()
            self.error = exc
            self.worker.up.set()

    async def start(self) -> process.Runtime:
        """Start it; its runtime once it listens (raises what stopped it starting)."""
        self.thread.start()
        await asyncio.to_thread(self.worker.up.wait)
        if self.error is not None or self.worker.rt is None:
            await asyncio.to_thread(self.thread.join, 5)
            raise self.error or RuntimeError("the worker did not start")
        return self.worker.rt

    async def stop(self) -> None:
        """Drain it (steps in flight finish, bounded) and wait until it has stopped."""
        if self.loop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.worker.stopping.set)
        await asyncio.to_thread(self.thread.join)


async def fire_webhook(
    rt: Any, name: str, headers: dict[str, str], body: bytes
) -> tuple[int, dict[str, Any]]:
    """Handle ``POST /hooks/NAME``: check the secret, start the trigger's goal."""
    from openlam.runtime.triggers import start_run, webhook_event

    trigger: Trigger | None = await asyncio.to_thread(Triggers(rt.store.engine).get, name)
    if trigger is None or trigger.kind != "webhook":
        return 404, {"error": f"no webhook trigger named {name}"}
    lowered = {k.lower(): v for k, v in headers.items()}
    token = (
        lowered.get("x-openlam-token")
        or lowered.get("authorization", "").removeprefix("Bearer ").strip()
    )
    try:
        event = webhook_event(trigger, token, body, headers)
    except PermissionError as exc:
        return 401, {"error": str(exc)}
    except ValueError as exc:
        return 413, {"error": str(exc)}
    run_id = await start_run(rt, trigger, event)
    if run_id is None:
        return 200, {"status": "duplicate", "detail": "this event started a run already"}
    return 202, {"status": "queued", "run_id": run_id}
