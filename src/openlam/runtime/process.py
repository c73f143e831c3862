"""The process-wide runtime: settings, database, action registry, DBOS, event listeners.

DBOS is a process singleton, so one process serves one workspace at a time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from openlam.actions.registry import ActionRegistry, load_plugins
from openlam.config import Settings
from openlam.memory.engines import sqlite_engine
from openlam.memory.store import Store

Listener = Callable[[dict[str, Any]], None]
log = logging.getLogger("openlam")


@dataclass
class Runtime:
    settings: Settings
    store: Store
    registry: ActionRegistry
    listeners: list[Listener] = field(default_factory=list)
    specials: dict[str, Any] = field(default_factory=dict)
    gate: Any = None
    learn_hooks: list[Any] = field(default_factory=list)
    recovering: list[str] = field(default_factory=list)
    secret: Callable[[str], str | None] = lambda _n: None
    redact: Callable[[Any], Any] = lambda v: v
    call_action: Any = None
    log_filter: logging.Filter | None = None

    def emit(self, event: dict[str, Any]) -> None:
        event = self.redact(event)
        for listener in list(self.listeners):
            try:
                listener(event)
            except Exception:  # a broken listener must not break a run
                log.exception("event listener failed")


_current: Runtime | None = None


def current() -> Runtime:
    if _current is None:
        raise RuntimeError("the OpenLAM runtime is not started; use Workforce(...) first")
    return _current


def start(settings: Settings) -> Runtime:
    """Open the database, load plugins and launch DBOS (recovering interrupted runs)."""
    global _current
    if _current is not None:
        if _current.settings.workspace == settings.workspace:
            return _current
        stop()
    from dbos import DBOS

    from openlam.loop.runner import _allow, action_caller
    from openlam.runtime.durable import WORKFLOW_VERSION

    settings.state_dir.mkdir(parents=True, exist_ok=True)
    store = Store(settings.app_database_url)
    registry = load_plugins(settings=settings)
    rt = Runtime(settings=settings, store=store, registry=registry, gate=_allow)
    rt.secret, rt.redact, rt.log_filter = _secrets(settings, registry)
    rt.call_action = action_caller(registry.get, lambda: settings, rt.secret)
    rt.specials = _specials(settings)
    _govern(rt)  # before launch: runs recovered at launch must be governed too
    _current = rt

    rt.learn_hooks.append(store.remember)
    logging.getLogger("dbos").setLevel(logging.WARNING)
    config: Any = {"name": "openlam", "system_database_url": settings.system_database_url,
                   "application_version": WORKFLOW_VERSION, "log_level": "WARNING"}
    if settings.system_database_url.startswith("sqlite"):
        config["system_database_engine"] = sqlite_engine(settings.system_database_url)
    DBOS(config=config)
    unfinished = store.unfinished_runs()  # read before launch starts recovering them
    DBOS.launch()
    rt.recovering = _ours(unfinished)
    return rt


def _ours(run_ids: list[str]) -> list[str]:
    """Of the runs left unfinished, those this process's executor is now recovering."""
    from dbos import DBOS

    if not run_ids:
        return []
    executor = DBOS.executor_id
    found = DBOS.list_workflows(workflow_ids=run_ids)
    return [w.workflow_id for w in found if w.executor_id == executor
            and w.status in ("PENDING", "ENQUEUED", "SUCCESS")]


def stop() -> None:
    global _current
    from dbos import DBOS

    if _current is None:
        return
    DBOS.destroy()
    if _current.log_filter is not None:  # the next workspace brings its own secrets
        for handler in logging.getLogger().handlers:
            handler.removeFilter(_current.log_filter)
    _current.store.close()
    _current = None


def _secrets(settings: Settings, registry: ActionRegistry
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


def _specials(settings: Settings) -> dict[str, Any]:
    """Handlers for the steps the loop cannot run as plain actions."""
    from openlam.actions.builtin.notes import read_board
    from openlam.org.delegation import DelegationLimits, delegate_handler
    from openlam.org.loader import load_catalog
    from openlam.runtime import human
    from openlam.runtime.durable import start_child

    specials: dict[str, Any] = {"ask_human": human.ask, "human.ask": human.ask}

    def notes(root_id: str) -> list[str]:
        return [f"note from {n['run_id']}: {n['text']}" for n in
                read_board(settings.workspace, root_id)][-10:]

    limits = DelegationLimits(max_depth=settings.max_delegation_depth,
                              max_fanout=settings.max_delegations)
    specials["delegate"] = delegate_handler(load_catalog(settings.workspace), start_child,
                                            limits, notes=notes)
    return specials


def _govern(rt: Runtime) -> None:
    """Governance wraps actions and model calls: policies, provenance, approvals that
    wait durably (DBOS.recv), budgets, rate limits, audit, capability gaps."""
    from openlam.governance.approvals import add_decision_listener
    from openlam.governance.durable import dbos_wait
    from openlam.governance.gate import build_gate

    gov = build_gate(rt.settings)
    gov.wait = dbos_wait(gov.approvals)
    rt.gate = gov
    rt.learn_hooks.append(gov.learn_hook)
    rt.listeners.append(gov.audit_events())
    add_decision_listener(_wake_waiting_run)


def _wake_waiting_run(approval: Any) -> None:
    """A decision made in this process wakes the run waiting for it at once."""
    from openlam.governance.durable import dbos_notifier

    if _current is not None:
        dbos_notifier(_current.settings)(approval)
