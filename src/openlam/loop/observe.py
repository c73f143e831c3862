"""Observe: from what really happened, decide the next step of the loop (a typed value)."""

from __future__ import annotations

from openlam.loop.state import NextStep, RunState, StepStatus


def observe(state: RunState, *, replans_left: int) -> NextStep:
    """``continue`` with the steps ready to run, or ``replan``/``done``/``blocked``/``failed``.

    Steps waiting on a failed, skipped or blocked step are skipped: they cannot happen.
    """
    records = state.records
    changed = True
    while changed:  # propagate skips through chains of dependents
        changed = False
        for r in records.values():
            if r.status is not StepStatus.pending:
                continue
            broken = [
                d
                for d in r.depends_on
                if records[d].status in (StepStatus.failed, StepStatus.skipped, StepStatus.blocked)
            ]
            if broken:
                r.status = StepStatus.skipped
                r.error = f"not run: {', '.join(broken)} did not succeed"
                changed = True
    ready = [
        r.id
        for r in records.values()
        if r.status is StepStatus.pending
        and all(records[d].status is StepStatus.succeeded for d in r.depends_on)
    ]
    if ready:
        return NextStep(kind="continue", ready=ready)
    missing = state.unrecovered()
    failed = [r for r in missing if r.status in (StepStatus.failed, StepStatus.skipped)]
    if failed and replans_left > 0:
        return NextStep(kind="replan", reason="; ".join(f"{r.id}: {r.error}" for r in failed))
    if failed:
        return NextStep(kind="failed", reason="; ".join(f"{r.id}: {r.error}" for r in failed))
    if state.gaps or missing:
        return NextStep(kind="blocked", reason="; ".join(g.why for g in state.gaps))
    return NextStep(kind="done")
