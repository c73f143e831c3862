"""Operating the workforce from outside a run: submit, cancel, schedules, status.

These talk to the DBOS system database through a ``DBOSClient`` — no executor is
registered and nothing is recovered — so ``openlam submit``, ``openlam runs cancel``,
``openlam schedule`` and ``openlam status`` are quick, and the server and the triggers
use the very same functions.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

from openlam.config import MAX_PRIORITY, Settings
from openlam.errors import UserError
from openlam.memory.store import Store

if TYPE_CHECKING:
    from dbos import DBOSClient

    from openlam.loop.runner import RunRequest

RUN_WORKFLOW = "openlam.run"
_clients: dict[str, DBOSClient] = {}
_lock = threading.Lock()


def client(settings: Settings) -> DBOSClient:
    """This process's client for the workspace's system database (made once)."""
    from dbos import DBOSClient

    from openlam.memory.engines import engine_for, sqlite_engine

    url = settings.system_database_url
    with _lock:
        if url not in _clients:
            from dbos import DBOS

            # the engine first: for SQLite it makes the database's directory
            engine = sqlite_engine(url) if url.startswith("sqlite") else engine_for(url)
            DBOS.migrate(url)  # a workspace whose first act is a submit has no tables yet
            _clients[url] = DBOSClient(system_database_engine=engine, application_name="openlam")
        return _clients[url]


def submit(
    settings: Settings, store: Store, request: RunRequest, priority: int | None = None
) -> bool:
    """Queue a prepared run for the workers; False if a run with its id exists already.

    Two steps: the run is listed (status ``queued``, with its request) and then put on
    its DBOS queue. A process killed between them leaves a listed run no worker will
    ever see; submitting the same run again queues it, and so does a worker's sweep
    (:func:`queue_unqueued`) — nothing submitted is lost."""
    from openlam.runtime.queues import queue_for

    if priority is not None:  # stored with the run: a re-queue after a kill keeps it
        if isinstance(priority, bool) or not 1 <= priority <= MAX_PRIORITY:
            raise UserError(
                f"priority must be a whole number from 1 (most urgent) to {MAX_PRIORITY}, "
                f"got {priority!r}",
                "e.g. priority=1 for the most urgent; leave it out to run after prioritised runs",
            )
        request = request.model_copy(update={"priority": priority})
    name = queue_for(settings, request.agent.id, request.agent.department)
    dbos = client(settings)
    if not store.claim_queued(request, name) and not _never_queued(store, dbos, request.run_id):
        return False
    try:
        _enqueue(settings, dbos, request, name)
    except BaseException:
        store.forget(request.run_id)  # not queued after all: no phantom "queued" run
        raise
    return True


REQUEUE_AFTER = 30.0  # seconds a listed run may wait for its submitter to queue it


def queue_unqueued(
    settings: Settings, store: Store, older_than: float = REQUEUE_AFTER
) -> list[str]:
    """Queue the runs listed as queued more than ``older_than`` seconds ago that are on
    no DBOS queue (their submitting process was killed in between), from the request
    stored with them (their priority too); returns their ids."""
    from openlam.loop.runner import RunRequest
    from openlam.runtime.queues import queue_for

    listed = store.queued_before(time.time() - older_than)
    if not listed:
        return []
    dbos = client(settings)
    queued = set()
    for start in range(0, len(listed), 500):  # a long backlog: bounded statements
        chunk = listed[start : start + 500]
        found = dbos.list_workflows(workflow_ids=chunk, load_input=False, load_output=False)
        queued.update(w.workflow_id for w in found)
    done = []
    for run_id in (r for r in listed if r not in queued):  # read only the unqueued ones
        run = store.get_run(run_id)
        if run is None or run["status"] != "queued":  # started or cancelled meanwhile
            continue
        request = RunRequest.model_validate(run["request"])
        name = queue_for(settings, request.agent.id, request.agent.department)
        _enqueue(settings, dbos, request, name)
        done.append(run_id)
    return done


def _never_queued(store: Store, dbos: DBOSClient, run_id: str) -> bool:
    run = store.get_run(run_id)
    return (
        run is not None
        and run["status"] == "queued"
        and not dbos.list_workflows(workflow_ids=[run_id], load_input=False, load_output=False)
    )


def _enqueue(settings: Settings, dbos: DBOSClient, request: RunRequest, name: str) -> None:
    """Put the run on its queue (DBOS keys it by the run id: doing it twice is harmless)."""
    from dbos import EnqueueOptions

    from openlam.runtime.durable import WORKFLOW_VERSION
    from openlam.runtime.queues import configured

    if dbos.retrieve_queue(name) is None:  # no worker has registered it yet
        next(q for q in configured(settings) if q.name == name).register_with(dbos)
    options: EnqueueOptions = {
        "workflow_name": RUN_WORKFLOW,
        "queue_name": name,
        "workflow_id": request.run_id,
        "app_version": WORKFLOW_VERSION,
    }
    if request.priority is not None:
        options["priority"] = request.priority
    dbos.enqueue(options, request.model_dump(mode="json"))


def cancel(
    settings: Settings, store: Store, run_id: str, *, by: str, reason: str = "cancelled"
) -> str:
    """Stop a run and its delegated children: a queued run never starts; a running one
    starts no further step and ends ``cancelled`` with what it did so far. Returns what
    happened, in words."""

    run = store.get_run(run_id)
    if run is None:
        raise UserError(
            f"no run {run_id!r} in this workspace", "list runs with `openlam runs list`"
        )
    run_id = run["id"]
    if run["status"] not in ("queued", "running", "interrupted"):
        raise UserError(f"run {run_id} has already ended ({run['status']})")
    store.request_cancel(run_id, reason, by)
    status = client(settings).retrieve_workflow(run_id).get_status().status
    if status in ("ENQUEUED", "DELAYED"):
        client(settings).cancel_workflow(run_id)
        store.mark_cancelled(run_id, f"Cancelled before it started: {reason} (by {by})")
        return f"run {run_id} was waiting in its queue and will not start"
    return f"run {run_id} starts no further step; it ends cancelled with what it did so far"


def status(settings: Settings, store: Store) -> dict[str, Any]:
    """Workers alive, queue depths, runs by state, the oldest waiting approval."""
    from openlam.governance.api import list_approvals
    from openlam.runtime.executors import ALIVE, Executors

    executors = Executors(store.engine)
    alive = [e for e in executors.list(states=(ALIVE,)) if not executors.is_dead(e)]
    queued = client(settings).list_workflows(
        status=["ENQUEUED"], load_input=False, load_output=False
    )
    waiting = list_approvals(settings, status="pending")
    oldest = min(waiting, key=lambda a: a.requested_at) if waiting else None
    return {
        "processes": [
            {
                "id": e.id,
                "kind": e.kind,
                "host": e.host,
                "pid": e.pid,
                "seen_seconds_ago": round(e.age, 1),
            }
            for e in alive
        ],
        "queues": dict(Counter(w.queue_name or "?" for w in queued)),
        "runs": store.count_by_status(),
        "oldest_approval": None
        if oldest is None
        else {
            "id": oldest.id,
            "run_id": oldest.run_id,
            "action": oldest.action,
            "waiting_seconds": round(time.time() - oldest.requested_at),
        },
    }


FINAL = ("completed", "partial", "blocked", "failed", "cancelled")


def resume(settings: Settings, store: Store, run_id: str, rt: Any = None) -> str:
    """Hand an interrupted run back to the workers, to finish from its last finished
    step (no action is repeated). ``rt``: this process's runtime, if it has one (it
    then takes over a dead process's runs at once instead of at the next sweep).
    Returns what happened, in words; a UserError if the run cannot be resumed."""
    from openlam.runtime.executors import Executors

    run = store.get_run(run_id)
    if run is None:
        raise UserError(
            f"no run {run_id!r} in this workspace", "list runs with `openlam runs list`"
        )
    run_id = run["id"]
    if run["status"] in FINAL:
        raise UserError(
            f"run {run_id} has already ended ({run['status']})",
            "submit the goal again to run it anew",
        )
    status = client(settings).retrieve_workflow(run_id).get_status()
    if status.status in ("ENQUEUED", "DELAYED"):
        return f"run {run_id} is waiting in its queue; a worker starts it"
    if status.status == "PENDING":
        executors = Executors(store.engine)
        owner = executors.get(status.executor_id or "")
        if owner is not None and not executors.is_dead(owner):
            raise UserError(
                f"run {run_id} is being executed by a live OpenLAM process "
                f"({owner.kind}, pid {owner.pid} on {owner.host})",
                "wait for it to finish, or stop that process; its runs are then "
                "resumed without repeating a step",
            )
        if rt is not None:
            from openlam.runtime.process import recover_dead

            recover_dead(rt)
            return f"run {run_id} was handed back to the queue; it continues on a worker"
        return (
            f"run {run_id} belonged to a stopped process; a running worker takes it "
            "over within its lease"
        )
    if status.status == "SUCCESS":
        raise UserError(f"run {run_id} has already ended")
    client(settings).resume_workflow(run_id)
    return f"run {run_id} resumes from its last finished step on a worker"


def check_max_steps(value: object, whose: str = "max_steps") -> None:
    """Refuse a step budget given in code that is not a whole number of at least 1."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise UserError(
            f"{whose} must be a whole number of at least 1, not {value!r}",
            "give the most steps a run may take, or leave it out for the workspace's max_steps",
        )


def check_goal(goal: str) -> str:
    """The goal, stripped; a clear error for an empty one or one that is not valid text
    (a command line can carry bytes that are not UTF-8)."""

    if not isinstance(goal, str) and goal is not None:  # the Python API: any object
        raise UserError(
            f"the goal must be text, not {type(goal).__name__} ({str(goal)[:60]!r})",
            "give the goal as a str, e.g. wf.run(\"write 'hello' to hello.md\")",
        )
    text = goal.strip() if isinstance(goal, str) else ""
    if not text:
        raise UserError(
            "the goal is empty",
            "say what to get done, e.g. openlam run \"write 'hello' to hello.md\"",
        )
    bad = next((i for i, ch in enumerate(text) if 0xD800 <= ord(ch) <= 0xDFFF), None)
    if bad is not None:
        raise UserError(
            f"the goal contains bytes that are not valid UTF-8 (at character {bad + 1})",
            "check the terminal's encoding, or retype the goal",
        )
    return text
