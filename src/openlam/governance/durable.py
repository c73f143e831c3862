"""Waiting for approvals inside a durable (DBOS) run, across restarts and processes.

``dbos_wait(store)`` is the :data:`~openlam.governance.approvals.WaitForDecision` for
runs that are DBOS workflows: it reads the approval's status in a DBOS step (so a
replayed workflow sees the same answers it saw the first time) and sleeps in
``DBOS.recv`` (checkpointed: a process that dies while waiting resumes waiting, or finds
the decision, after recovery). ``dbos_notifier(settings)`` is a decision listener that
wakes the waiting run at once through the DBOS system database; without it the run
notices a decision within ``poll_seconds``.

Wiring (``openlam.runtime.process.start``, *before* ``DBOS.launch()`` so that runs
recovered at launch are governed too)::

    gov = build_gate(settings, wait=dbos_wait(approval_store_for_gate))
    rt.gate = gov
    add_decision_listener(dbos_notifier(settings))

``openlam approvals`` registers the notifier itself whenever the workspace has a DBOS
system database.
"""

from __future__ import annotations

import logging
from typing import Any

from openlam.governance.approvals import (
    PENDING,
    Approval,
    ApprovalStore,
    DecisionListener,
    WaitForDecision,
)

log = logging.getLogger(__name__)
_stores: dict[str, ApprovalStore] = {}


def topic(approval_id: str) -> str:
    return f"approval:{approval_id}"


_read_step: Any = None


async def _read_status(url: str, approval_id: str) -> dict[str, Any]:
    return _stores[url].get(approval_id).to_dict()


def dbos_wait(store: ApprovalStore, poll_seconds: float = 60.0) -> WaitForDecision:
    global _read_step
    from dbos import DBOS

    url = store.engine.url.render_as_string(hide_password=False)
    _stores[url] = store
    if _read_step is None:
        _read_step = DBOS.step(name="openlam.approval_status")(_read_status)
    read = _read_step

    async def wait(approval: Approval) -> Approval:
        while True:
            current = Approval(**await read(url, approval.id))
            if current.status != PENDING:
                return current
            await DBOS.recv_async(topic(approval.id),
                                  timeout_seconds=max(1.0, min(poll_seconds,
                                                               current.seconds_left())))

    return wait


def dbos_notifier(settings: Any) -> DecisionListener:
    """Send each decision to the waiting run's workflow (its id is the run id)."""

    def notify(approval: Approval) -> None:
        from dbos import DBOSClient

        try:
            client = DBOSClient(system_database_url=settings.system_database_url)
        except Exception:  # no DBOS system database here: nothing is waiting durably
            log.debug("no DBOS system database; approval %s not signalled", approval.id)
            return
        try:
            client.send(approval.run_id, {"status": approval.status}, topic=topic(approval.id))
        except Exception as exc:  # e.g. a non-durable run: it polls the store instead
            log.debug("could not signal run %s: %s", approval.run_id, exc)
        finally:
            client.destroy()

    return notify
