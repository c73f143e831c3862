"""The process-wide runtime: settings, database, action registry, DBOS, event listeners.

DBOS is a process singleton, so one process serves one workspace at a time. Each
process is its own DBOS executor with a unique id and a lease (see
:mod:`openlam.runtime.executors`); at start it recovers only the runs of executors
that are provably dead — never a live process's run.

This module is the runtime's state; :mod:`openlam.runtime.boot` starts it (starting wires
in the durable workflows, which read this state, so it sits above them).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from openlam.actions.registry import ActionRegistry
from openlam.config import Settings
from openlam.memory.store import Store
from openlam.runtime.eventlog import EventLog
from openlam.runtime.executors import Executors, Heartbeat
from openlam.runtime.journal import JournalStore
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
RUN_WORKFLOW = "openlam.run"  # the DBOS workflow of a run (runtime/durable.py)

log = logging.getLogger("openlam")


@dataclass
class Runtime:
    """Everything this process holds for its workspace; made by
    :func:`openlam.runtime.boot.start`."""

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
    submit: Callable[..., Awaitable[bool]] | None = None  # queue a goal (boot.start's submit)
    run_tasks: set[asyncio.Task[Any]] = field(default_factory=set)  # runs executing here

    @contextlib.contextmanager
    def running_here(self) -> Iterator[None]:
        """Around a run's workflow: its task is known, so closing can stop it."""
        task = asyncio.current_task()
        if task is not None:
            self.run_tasks.add(task)
        try:
            yield
        finally:
            self.run_tasks.discard(task)  # type: ignore[arg-type]

    async def stop_runs(self, timeout: float = 10.0) -> None:
        """Cancel the runs still executing in this process (before DBOS stops under them):
        each stays PENDING with what it finished, and resumes in another process."""
        current = asyncio.current_task()
        running = [t for t in self.run_tasks if t is not current and not t.done()]
        if not running:
            return
        dbos_log = logging.getLogger("dbos")
        dbos_log.addFilter(_not_a_cancel_warning)  # these cancels are meant
        try:
            for task in running:
                task.cancel()
            _done, stuck = await asyncio.wait(running, timeout=timeout)
        finally:
            dbos_log.removeFilter(_not_a_cancel_warning)
        if stuck:
            log.warning("%d run(s) did not stop within %g s", len(stuck), timeout)

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


def _not_a_cancel_warning(record: logging.LogRecord) -> bool:
    return not record.getMessage().startswith("Asyncio task cancelled")


# The one place this process's state is held. DBOS calls a workflow by name with only
# its arguments, so the workflows (runtime.durable, runtime.schedules) and the special
# steps they run (runtime.human) read the runtime here; everything else is given it.
_current: Runtime | None = None


def current_or_none() -> Runtime | None:
    return _current


def current() -> Runtime:
    if _current is None:
        raise RuntimeError("the OpenLAM runtime is not started; use Workforce(...) first")
    return _current


def wake_waiting_run(approval: Any) -> None:
    """A decision made in this process wakes the run waiting for it at once (the gate's
    approvals and the server's deciding calls are given this as ``on_decision``)."""
    if _current is not None:
        _current.wakeups.wake(approval_key(approval.id))


def attach(rt: Runtime) -> None:
    """Make ``rt`` this process's runtime (:func:`openlam.runtime.boot.start` does)."""
    global _current
    _current = rt


def recover_at_start(rt: Runtime) -> list[str]:
    """What a process takes on when it starts: the runs of dead executors
    (:func:`recover_dead`), and runs handed back earlier that no process has taken yet —
    their sweeper was killed before any process did, and with no worker running nothing
    else would ever resume them. Their ids."""
    from dbos import DBOS
    from dbos._utils import INTERNAL_QUEUE_NAME  # where DBOS hands recovered runs back

    handed_back = recover_dead(rt)
    waiting = DBOS.list_workflows(
        status="ENQUEUED",
        queue_name=INTERNAL_QUEUE_NAME,
        name=RUN_WORKFLOW,
        load_input=False,
        load_output=False,
    )
    return [*handed_back, *(w.workflow_id for w in waiting if w.workflow_id not in handed_back)]


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
