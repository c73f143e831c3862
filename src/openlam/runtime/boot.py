"""Starting this process's runtime: the database, the plugins, governance, learning,
the special steps, DBOS as a new executor, and the recovery of dead executors' runs.

Apart from :mod:`openlam.runtime.process` (the runtime's state, which the durable
workflows read): starting wires those workflows in, so it sits above them.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import logging
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any

from openlam.actions import threads
from openlam.actions.registry import ActionRegistry, load_plugins
from openlam.actions.threads import ACTION_THREADS
from openlam.config import Settings, whole_number
from openlam.memory.engines import configure_pool, engine_for, opened, sqlite_engine
from openlam.memory.store import Store
from openlam.runtime import admin, process
from openlam.runtime.eventlog import EventLog
from openlam.runtime.executors import Executors, Heartbeat, Lease, new_executor_id
from openlam.runtime.journal import JournalStore
from openlam.runtime.process import Runtime
from openlam.runtime.queues import configured

if TYPE_CHECKING:
    from openlam.loop.runner import SpecialHandler

THREADS = 8  # the bookkeeping's calls are short; blocking actions have their own pool

Submit = Callable[..., Awaitable[bool]]
"""``submit(rt, goal, **options)``: prepare a goal as the Python API does and queue it;
False if a run with its id exists already."""


def start(
    settings: Settings,
    kind: str = "run",
    listen: list[str] | None = None,
    worker_concurrency: int | None = None,
    submit: Submit | None = None,
) -> Runtime:
    """Open the database, load plugins, launch DBOS as a new executor, and recover the
    runs of dead executors. ``kind`` (run | worker | serve) labels the executor; an
    interactive ``run`` process takes no queued work (it would leave it half done when
    its goal is finished), a worker takes the queues in ``listen`` (default: all).
    ``submit(rt, goal, **options)`` queues a goal the way the layer above does
    (:func:`openlam.workforce.submit_goal`): a schedule's firing goes through it."""
    with _collector_paused():
        return _start(settings, kind, listen, worker_concurrency, submit)


_frozen = False


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Starting makes ~100k objects that live as long as the process (modules, classes,
    schemas). The cyclic garbage collector would scan them over and over while they are
    made (≈ 0.15 s of an offline ``openlam run``'s 0.75 s) and at every full collection
    after, so it is paused while starting, and the first start moves everything that
    exists then out of its sight (``gc.freeze``): later collections scan only what runs
    make. Objects are still freed as usual when nothing refers to them."""
    global _frozen
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
        if not _frozen:
            gc.freeze()
            _frozen = True
    finally:
        if was_on:
            gc.enable()


def _start(
    settings: Settings,
    kind: str,
    listen: list[str] | None,
    worker_concurrency: int | None,
    submit: Submit | None,
) -> Runtime:
    running = process.current_or_none()
    if running is not None:
        if running.settings.workspace == settings.workspace:
            return running
        process.stop()
    from dbos import DBOS

    from openlam.loop.act import action_caller
    from openlam.runtime import schedules  # registers its workflow before launch
    from openlam.runtime.durable import WORKFLOW_VERSION
    from openlam.runtime.sqlite_dequeue import serialize_dequeues

    del schedules

    # Settings are checked before anything starts: a bad one leaves no half-started runtime.
    action_threads, bookkeeping_threads = check_settings(settings)
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    threads.configure(action_threads)
    store = Store(settings.app_database_url)
    registry = load_plugins(settings=settings)
    executor_id = new_executor_id(kind)
    executors = Executors(store.engine, Lease.from_settings(settings))
    rt = Runtime(
        settings=settings,
        store=store,
        registry=registry,
        executor_id=executor_id,
        executors=executors,
        journals=JournalStore(store.engine, executor_id, settings.state_dir / "outputs", executors),
    )
    rt.secret, rt.redact, rt.log_filter = _secrets(settings, registry)
    rt.call_action = action_caller(registry.get, lambda: settings, rt.secret)
    rt.specials = _specials(settings)
    _govern(rt)  # before launch: runs recovered at launch must be governed too
    rt.events = EventLog(store.engine)  # any process can follow the runs this one executes
    rt.listeners.append(rt.events.record)
    if submit is not None:
        rt.submit = functools.partial(submit, rt)
    process.attach(rt)

    rt.learn_hooks.append(store.remember)
    _learning(rt)
    logging.getLogger("dbos").setLevel(logging.WARNING)
    if settings.system_database_url.startswith("sqlite"):
        serialize_dequeues()  # several workers on one SQLite file share a queue's limits
    DBOS(config=_dbos_config(settings, executor_id, WORKFLOW_VERSION, bookkeeping_threads))
    queues = configured(settings)
    takes_work = kind != "run"
    if takes_work:
        # Before launch: DBOS starts a poller for every queue already in the database
        # with the limits stored there, so a worker registered after launch took the
        # whole backlog on its first poll under another process's (or no) limit.
        _off_loop(_register_queues, admin.client(settings), queues, worker_concurrency, True)
    DBOS.listen_queues(listen or [q.name for q in queues] if takes_work else [])
    executors.register(executor_id, kind)
    DBOS.launch()  # with a unique executor id, launch itself recovers nothing
    if not takes_work:  # create what is missing; the workers' limits stay
        _off_loop(_register_queues, DBOS, queues, None, False)
    rt.heartbeat = Heartbeat(executors, executor_id).start()
    rt.recovering = _off_loop(process.recover_at_start, rt)
    return rt


def _off_loop(func: Callable[..., Any], *args: Any) -> Any:
    """Run ``func`` on a thread of its own: DBOS's synchronous calls refuse to run on a
    thread whose event loop is running (``start`` may be called from one)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(func, *args).result()


def _register_queues(
    dbos: Any, queues: list[Any], worker_concurrency: int | None, update: bool
) -> None:
    for queue in queues:
        queue.register_with(dbos, worker_concurrency, update=update)


def _dbos_config(settings: Settings, executor_id: str, version: str, pool_threads: int) -> Any:
    config: Any = {
        "name": "openlam",
        "system_database_url": settings.system_database_url,
        "application_version": version,
        "executor_id": executor_id,
        "log_level": "WARNING",
        # DBOS's listener thread sleeps this long between polls and shutdown
        # joins it: at DBOS's 1 s default every CLI command waited ~1 s at exit.
        "notification_listener_polling_interval_sec": 0.05,
        # DBOS's pool is every asyncio.to_thread's here; unbounded, a burst of 300 runs
        # started ≈ 270 threads and took ≈ 1.3 x the CPU (bench/README.md, "Cost per run").
        "max_executor_threads": pool_threads,
    }
    if settings.system_database_url.startswith("sqlite"):
        # opened here: DBOS would print a traceback for a damaged file, and no fix
        config["system_database_engine"] = opened(sqlite_engine(settings.system_database_url))
    else:
        # One bounded pool per process for DBOS and OpenLAM together (20 processes on a
        # PostgreSQL with max_connections=100 must not run out); polling instead of a
        # LISTEN connection held open per process.
        config["system_database_engine"] = engine_for(settings.system_database_url)
        config["use_listen_notify"] = False
    return config


def _secrets(
    settings: Settings, registry: ActionRegistry
) -> tuple[Callable[[str], str | None], Callable[[Any], Any], logging.Filter]:
    """The secret lookup, a redactor that masks every secret an action declares or the
    lookup hands out (in step results, events and reports), and its filter on log lines."""
    from openlam.actions.secrets import Redactor, redact_logging, secret_lookup

    redactor = Redactor.for_settings(settings, names=[n for s in registry for n in s.secrets])
    return secret_lookup(settings, redactor), redactor, redact_logging(redactor)


def _specials(settings: Settings) -> dict[str, SpecialHandler]:
    """Handlers for the steps the loop cannot run as plain actions."""
    from openlam.actions.builtin.notes import read_board
    from openlam.org.delegation import DelegationLimits, delegate_handler
    from openlam.org.loader import load_catalog
    from openlam.runtime import human
    from openlam.runtime.durable import start_child

    specials: dict[str, SpecialHandler] = {"ask_human": human.ask, "human.ask": human.ask}

    def notes(root_id: str) -> list[tuple[str, bool]]:
        """The board's last notes, each with whether it derives from untrusted content."""
        return [
            (f"note from {n['run_id']}: {n['text']}", bool(n.get("tainted", True)))
            for n in read_board(settings.workspace, root_id)
        ][-10:]

    limits = DelegationLimits(
        max_depth=settings.max_delegation_depth, max_fanout=settings.max_delegations
    )
    catalog = functools.cache(lambda: load_catalog(settings.workspace))  # at first delegation
    specials["delegate"] = delegate_handler(catalog, start_child, limits, notes=notes)
    return specials


def _learning(rt: Runtime) -> None:
    """Playbooks, lessons and tool reliability (openlam.learning), unless the workspace
    turned learning off."""
    from openlam.learning import enabled
    from openlam.learning.learner import Learner

    if enabled(rt.settings):
        rt.learner = Learner(rt.settings.app_database_url, rt.registry, rt.redact)
        rt.learn_hooks.append(rt.learner.learn)


def check_settings(settings: Settings) -> tuple[int, int]:
    """The settings a runtime reads, checked (and the database pool sized): a command
    calls this before it starts anything, so a bad setting is named with its fix, never
    a traceback from a half-started process. Returns (action threads, bookkeeping
    threads)."""
    from openlam.actions.network import NetworkRules
    from openlam.errors import ActionError, UserError

    configure_pool(settings)
    action_threads = whole_number(settings, "runtime", "action_threads", ACTION_THREADS, 1)
    bookkeeping_threads = whole_number(settings, "runtime", "threads", THREADS, 1)
    Lease.from_settings(settings)
    try:  # read at every outbound request: named now, not at the first step that connects
        NetworkRules.from_settings(settings)
    except ActionError as exc:
        raise UserError(
            str(exc), 'edit openlam.toml, e.g. allow_networks = ["10.0.0.0/8"]'
        ) from None
    return action_threads, bookkeeping_threads


def _govern(rt: Runtime) -> None:
    """Governance wraps actions and model calls: policies, provenance, approvals that
    wait durably (the decision is stored; see runtime/waiting.py), budgets, rate limits,
    audit, capability gaps."""
    from openlam.governance.gate import build_gate
    from openlam.loop.events import make_event
    from openlam.runtime.waiting import approval_wait

    gov = build_gate(rt.settings, on_decision=process.wake_waiting_run)
    gov.wait = approval_wait(gov.approvals, rt.wakeups, rt.waiting_for_person, rt.stop_reason)
    rt.gate = gov
    rt.learn_hooks.append(gov.learn_hook)
    audit = gov.audit_events()
    rt.listeners.append(lambda data: audit(make_event(data)))  # masked, then typed again
