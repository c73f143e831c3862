"""The process-wide runtime: settings, database, action registry, DBOS, event listeners.

DBOS is a process singleton, so one process serves one workspace at a time. Each
process is its own DBOS executor with a unique id and a lease (see
:mod:`openlam.runtime.executors`); at start it recovers only the runs of executors
that are provably dead — never a live process's run.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from openlam.actions.registry import ActionRegistry, load_plugins
from openlam.config import Settings
from openlam.memory.engines import configure_pool, engine_for, sqlite_engine
from openlam.memory.store import Store
from openlam.runtime.eventlog import EventLog
from openlam.runtime.executors import Executors, Heartbeat, Lease, new_executor_id
from openlam.runtime.journal import JournalStore
from openlam.runtime.queues import configured
from openlam.runtime.waiting import Wakeups, approval_key

if TYPE_CHECKING:
    from openlam.governance.gate import Governance
    from openlam.learning.learner import Learner
    from openlam.loop.act import ActionCall, ResumableCaller
    from openlam.loop.events import Event
    from openlam.loop.learn import LearnHook
    from openlam.loop.runner import SpecialHandler
    from openlam.loop.state import StepResult

Listener = Callable[[dict[str, Any]], None]
log = logging.getLogger("openlam")


@dataclass
class Runtime:
    """Everything this process holds for its workspace; made by :func:`start`."""

    settings: Settings
    store: Store
    registry: ActionRegistry
    executor_id: str
    executors: Executors
    journals: JournalStore
    listeners: list[Listener] = field(default_factory=list)
    specials: dict[str, SpecialHandler] = field(default_factory=dict)
    gate: Governance | None = None  # set by start() before any run can begin
    learn_hooks: list[LearnHook] = field(default_factory=list)
    recovering: list[str] = field(default_factory=list)
    waiting: Counter[str] = field(default_factory=Counter)  # run → its waits for a person
    wakeups: Wakeups = field(default_factory=Wakeups)
    secret: Callable[[str], str | None] = lambda _n: None
    redact: Callable[[Any], Any] = lambda v: v
    call_action: ResumableCaller | None = None
    log_filter: logging.Filter | None = None
    heartbeat: Heartbeat | None = None
    deadlines: dict[str, float] = field(default_factory=dict)  # run → epoch deadline
    inflight: int = 0  # model requests and actions running now
    draining: bool = False  # stopping: no new step starts (they resume elsewhere)
    learner: Learner | None = None  # None when the workspace has [learning] enabled = false
    events: EventLog | None = None  # every event, kept for whoever follows a run

    def emit(self, event: Event) -> None:
        """A run's ``emit``: every listener gets the event as a dict, secrets masked (the
        form the event log stores, the server streams and ``on_event`` receives)."""
        data = self.redact(event.model_dump())
        for listener in list(self.listeners):
            try:
                listener(data)
            except Exception:  # a broken listener must not break a run
                log.exception("event listener failed")

    @contextlib.contextmanager
    def waiting_for_person(self, run_id: str) -> Iterator[None]:
        self.waiting[run_id] += 1
        try:
            yield
        finally:
            self.waiting[run_id] -= 1
            if self.waiting[run_id] <= 0:
                del self.waiting[run_id]

    @contextlib.asynccontextmanager
    async def step_slot(self) -> AsyncIterator[None]:
        """Around each model request and action: counted while in flight; while the
        process drains, a new one never starts (its run is resumed by another process)."""
        if self.draining:
            await asyncio.Event().wait()  # until the drain cancels this run
        self.inflight += 1
        try:
            yield
        finally:
            self.inflight -= 1

    def explain_missing(self, action: str, agent: str) -> str | None:
        from openlam.actions.grants import permission_hint

        return permission_hint(self.settings, action, agent, (s.name for s in self.registry))

    def stop_reason(self, run_id: str) -> str | None:
        """Why ``run_id`` must stop now: cancelled (itself or a run above it in its
        delegation tree), or past its deadline. Blocking (reads the database)."""
        deadline = self.deadlines.get(run_id)
        if deadline is not None and time.time() >= deadline:
            return f"its deadline passed at {time.strftime('%H:%M:%S', time.localtime(deadline))}"
        return self.store.cancel_reason(run_id)

    async def act(self, call: ActionCall, resumed: int = 0) -> StepResult:
        from openlam.loop.state import StepResult

        assert self.call_action is not None
        result = await self.call_action(call, resumed)
        if not self.redact:  # a Redactor that knows no secret yet: nothing to mask
            return result
        return StepResult.model_validate(self.redact(result.model_dump(mode="json")))


_current: Runtime | None = None


def current_or_none() -> Runtime | None:
    return _current


def current() -> Runtime:
    if _current is None:
        raise RuntimeError("the OpenLAM runtime is not started; use Workforce(...) first")
    return _current


def start(
    settings: Settings,
    kind: str = "run",
    listen: list[str] | None = None,
    worker_concurrency: int | None = None,
) -> Runtime:
    """Open the database, load plugins, launch DBOS as a new executor, and recover the
    runs of dead executors. ``kind`` (run | worker | serve) labels the executor; an
    interactive ``run`` process takes no queued work (it would leave it half done when
    its goal is finished), a worker takes the queues in ``listen`` (default: all)."""
    global _current
    if _current is not None:
        if _current.settings.workspace == settings.workspace:
            return _current
        stop()
    from dbos import DBOS

    from openlam.loop.act import action_caller
    from openlam.runtime import schedules  # registers its workflow before launch
    from openlam.runtime.durable import WORKFLOW_VERSION

    del schedules

    settings.state_dir.mkdir(parents=True, exist_ok=True)
    configure_pool(settings)
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
    _current = rt

    rt.learn_hooks.append(store.remember)
    _learning(rt)
    logging.getLogger("dbos").setLevel(logging.WARNING)
    DBOS(config=_dbos_config(settings, executor_id, WORKFLOW_VERSION))
    queues = configured(settings)
    DBOS.listen_queues([] if kind == "run" else listen or [q.name for q in queues])
    executors.register(executor_id, kind)
    DBOS.launch()  # with a unique executor id, launch itself recovers nothing
    _off_loop(_register_queues, queues, worker_concurrency)
    rt.heartbeat = Heartbeat(executors, executor_id).start()
    rt.recovering = _off_loop(recover_dead, rt)
    return rt


def _off_loop(func: Callable[..., Any], *args: Any) -> Any:
    """Run ``func`` on a thread of its own: DBOS's synchronous calls refuse to run on a
    thread whose event loop is running (``start`` may be called from one)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(func, *args).result()


def _register_queues(queues: list[Any], worker_concurrency: int | None) -> None:
    for queue in queues:
        queue.register(worker_concurrency)


def _dbos_config(settings: Settings, executor_id: str, version: str) -> Any:
    config: Any = {
        "name": "openlam",
        "system_database_url": settings.system_database_url,
        "application_version": version,
        "executor_id": executor_id,
        "log_level": "WARNING",
        # DBOS's listener thread sleeps this long between polls and shutdown
        # joins it: at DBOS's 1 s default every CLI command waited ~1 s at exit.
        "notification_listener_polling_interval_sec": 0.05,
    }
    if settings.system_database_url.startswith("sqlite"):
        config["system_database_engine"] = sqlite_engine(settings.system_database_url)
    else:
        # One bounded pool per process for DBOS and OpenLAM together (20 processes on a
        # PostgreSQL with max_connections=100 must not run out); polling instead of a
        # LISTEN connection held open per process.
        config["system_database_engine"] = engine_for(settings.system_database_url)
        config["use_listen_notify"] = False
    return config


def recover_dead(rt: Runtime) -> list[str]:
    """Runs left PENDING by executors that are provably dead, handed back to the queue
    so that a live process (this one, or any other) resumes them; returns their ids."""
    from dbos import DBOS

    pending = DBOS.list_workflows(status="PENDING", load_input=False, load_output=False)
    owners = {w.executor_id for w in pending if w.executor_id and w.executor_id != rt.executor_id}
    if not owners:
        return []
    known = {e.id: e for e in rt.executors.list(ids=sorted(owners))}
    dead = []
    for owner in sorted(owners):
        info = known.get(owner)
        if not rt.executors.is_dead(info):
            continue
        if (
            info is not None
            and info.state == "alive"
            and not rt.executors.declare_dead(info, rt.executor_id)
        ):
            continue  # it heartbeated meanwhile, or another process took it over
        dead.append(owner)
    if not dead:
        return []
    # DBOS's own recovery of other executors' workflows (3.4 names it with an underscore):
    # each is re-enqueued atomically, so two sweepers cannot both run it.
    return [h.workflow_id for h in DBOS._recover_pending_workflows(dead)]


def stop() -> None:
    global _current
    from dbos import DBOS

    if _current is None:
        return
    if _current.heartbeat is not None:
        _current.heartbeat.stop()
    DBOS.destroy()
    if _current.gate is not None:  # records of runs that stopped without finishing
        try:
            _current.gate.audit.flush()
        except Exception:
            log.warning("could not write the last audit records")
    try:  # its unfinished runs (if any) may now be taken over at once
        _current.executors.stop(_current.executor_id)
    except Exception:
        log.warning("could not mark executor %s stopped", _current.executor_id)
    if _current.events is not None:
        _current.events.close()
    if _current.log_filter is not None:  # the next workspace brings its own secrets
        for handler in logging.getLogger().handlers:
            handler.removeFilter(_current.log_filter)
    _current.store.close()
    _current = None


def _secrets(
    settings: Settings, registry: ActionRegistry
) -> tuple[Callable[[str], str | None], Callable[[Any], Any], logging.Filter]:
    """The secret lookup, a redactor that masks every secret an action declares or the
    lookup hands out (in step results, events and reports), and its filter on log lines."""
    from openlam.actions.secrets import Redactor, redact_logging, secret_lookup

    redactor = Redactor.for_settings(settings, names=[n for s in registry for n in s.secrets])
    return secret_lookup(settings, redactor), redactor, redact_logging(redactor)


async def end_of_run(run_id: str) -> None:
    """Let plugins release what they hold for a run (a browser, say)."""
    for module in current().registry.modules:
        close_run = getattr(module, "close_run", None)
        if close_run is not None:
            try:
                await close_run(run_id)
            except Exception:  # cleanup must not change a run's outcome
                log.exception("plugin %s failed to clean up run %s", module.__name__, run_id)


async def close_plugins() -> None:
    """At shutdown, on the event loop the plugins ran on."""
    if _current is None:
        return
    for module in _current.registry.modules:
        close_all = getattr(module, "close_all", None)
        if close_all is not None:
            try:
                await close_all()
            except Exception:
                log.exception("plugin %s failed to shut down", module.__name__)


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


def _govern(rt: Runtime) -> None:
    """Governance wraps actions and model calls: policies, provenance, approvals that
    wait durably (the decision is stored; see runtime/waiting.py), budgets, rate limits,
    audit, capability gaps."""
    from openlam.governance.approvals import add_decision_listener
    from openlam.governance.gate import build_gate
    from openlam.loop.events import make_event
    from openlam.runtime.waiting import approval_wait

    gov = build_gate(rt.settings)
    gov.wait = approval_wait(gov.approvals, rt.wakeups, rt.waiting_for_person, rt.stop_reason)
    rt.gate = gov
    rt.learn_hooks.append(gov.learn_hook)
    audit = gov.audit_events()
    rt.listeners.append(lambda data: audit(make_event(data)))  # masked, then typed again
    add_decision_listener(_wake_waiting_run)


def _wake_waiting_run(approval: Any) -> None:
    """A decision made in this process wakes the run waiting for it at once."""
    if _current is not None:
        _current.wakeups.wake(approval_key(approval.id))
