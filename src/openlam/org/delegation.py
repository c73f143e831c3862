"""Delegation: a ``delegate`` step runs a sub-goal as a child run of another agent.

The child acts with its own permissions only (its catalog profile), shares the parent's
workspace and notes board, and is durable like any run. Limits: depth, fan-out per run,
steps; cycles are refused. Refusals are honest ``blocked`` steps, never crashes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from difflib import get_close_matches
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from openlam.loop.runner import Runner, RunRequest
    from openlam.loop.state import Outcome, StepRecord, StepResult
    from openlam.org.loader import Catalog

StartChild = Callable[["RunRequest"], Awaitable["Outcome"]]


@dataclass(frozen=True)
class DelegationLimits:
    max_depth: int = 3  # a child of a child of a child, at most
    max_fanout: int = 12  # delegate steps one run may take
    max_child_steps: int = 15


def delegate_handler(
    catalog: Catalog | Callable[[], Catalog],
    start_child: StartChild,
    limits: DelegationLimits = DelegationLimits(),
    notes: Callable[[str], list[tuple[str, bool]]] = lambda _root: [],
):
    """The ``delegate`` step's handler. ``catalog`` may be a function giving it, called
    at the first delegation (a process that never delegates does not read the catalog's
    YAML files)."""
    load = catalog if callable(catalog) else lambda: catalog

    async def delegate(runner: Runner, record: StepRecord, args: dict[str, Any]) -> StepResult:
        from openlam.governance.taint import assess
        from openlam.loop.runner import Routing
        from openlam.loop.state import Gap, GapKind, StepResult

        catalog = load()
        req = runner.request
        target = str(args.get("agent", "")).strip()
        me = req.agent.id
        problem = None
        if target not in catalog:
            close = get_close_matches(target, [a.id for a in catalog], n=3)
            problem = f"there is no agent {target!r}" + (
                f"; did you mean {', '.join(close)}?" if close else ""
            )
        elif target == me or target in req.lineage:
            problem = "delegation cycle " + " → ".join([*req.lineage, me, target])
        elif len(req.lineage) + 1 > limits.max_depth:
            problem = f"delegation depth limit ({limits.max_depth}) reached"
        elif runner.state.delegations >= limits.max_fanout:
            problem = f"fan-out limit ({limits.max_fanout} delegations per run) reached"
        if problem:
            runner.state.gaps.append(
                Gap(
                    kind=GapKind.delegation,
                    what=f"delegate to {target}",
                    why=problem,
                    step=record.id,
                )
            )
            return StepResult.blocked(problem)

        runner.state.delegations += 1  # counted before any await: replays count alike
        # A goal derived from tool output (or written after reading it, or by a run whose
        # own goal was untrusted) makes an untrusted child: its plan carries that taint.
        taint = assess(record, runner.state.records, untrusted_goal=req.tainted_by)
        tainted_by = [*req.tainted_by, *(f"{req.run_id}:{s}" for s in taint.sources)]
        board = notes(req.root_id or req.run_id)
        if any(tainted for _, tainted in board):  # the child's first plan reads them too
            tainted_by.append(f"notes:{req.root_id or req.run_id}")
        agent = catalog.agent(target)
        budget = agent.budget.max_steps if agent.budget and agent.budget.max_steps else None
        child = req.model_copy(
            update={
                "run_id": f"{req.run_id}.{record.id}",
                "goal": str(args["goal"]),
                "root_id": req.root_id or req.run_id,
                "tainted_by": list(dict.fromkeys(tainted_by)),
                "agent": catalog.profile(target),
                "parent_id": req.run_id,
                "lineage": [*req.lineage, me],
                "model": agent.model or req.model,
                "routing": Routing(),
                "max_steps": min(budget or limits.max_child_steps, limits.max_child_steps),
                "context": [
                    f"Delegated by {me} ({req.agent.title}) as part of: {req.goal}",
                    *(text for text, _ in board),
                ],
            }
        )
        outcome = await start_child(child)
        runner.state.usage.add(outcome.usage)  # a tree's cost is its parent's cost
        output = {
            "child": True,
            "run_id": outcome.run_id,
            "agent": target,
            "status": outcome.status.value,
            "summary": outcome.summary,
            "deliverables": outcome.deliverables,
            "outputs": {s.id: s.output for s in outcome.steps if s.status.value == "succeeded"},
        }
        if outcome.status.value == "completed":
            return StepResult.succeeded(output)
        why = f"{target} ended {outcome.status.value}: {outcome.summary}"
        return StepResult.failed(why, attempts=1, output=output)  # the child's work is shown

    return delegate
