"""Provenance: which steps carry data the user did not give.

Everything an action returns — an email's body, a web page, a file, a CRM record — is
untrusted: whoever wrote it may be trying to steer the workforce. Two ways it reaches a
step:

* **tainted arguments** — an argument references a tool output (``${s1.output.body}``),
  directly or through a chain of steps whose own arguments were tainted;
* **tainted origin** — the step belongs to a plan made *after* untrusted content was
  shown to the planner: plan version > 1 and some step of an earlier version returned
  output or failed with an action's error (both appear in the replan prompt). The step
  itself may look innocent, but the planner that wrote it had read attacker-controlled
  text.

A run's goal can itself be untrusted (``RunRequest.tainted_by``): a child delegated with
text derived from tool output, or a run a trigger started from an email or a webhook.
Then every step of the run counts as planned after reading untrusted content (origin),
whatever its plan version — the planner may have copied the goal's text anywhere.

Only the plan made from a person's goal (version 1) is trusted; a policy may also name
actions whose outputs are trusted (``trusted_outputs``, e.g. an internal directory).
Results a governance decision produced (blocked, denied) are OpenLAM's own words, not
tool output, and taint nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from openlam.loop.references import find_refs
from openlam.loop.state import SPECIAL_ACTIONS, StepRecord, StepStatus

GOVERNANCE_MARK = "[governance]"
"""Errors the gate writes start with this, so they are known not to be tool output."""


@dataclass
class Taint:
    args: dict[str, list[str]] = field(default_factory=dict)
    """argument name → the untrusted steps its value derives from"""
    origin: list[str] = field(default_factory=list)
    """steps whose output or error the planner had read before planning this step"""
    goal: list[str] = field(default_factory=list)
    """why the run's goal itself is untrusted ("trigger:inbox", "run-1:s1")"""

    @property
    def tainted_args(self) -> frozenset[str]:
        return frozenset(self.args)

    @property
    def tainted_origin(self) -> bool:
        return bool(self.origin or self.goal)

    @property
    def tainted(self) -> bool:
        return self.tainted_origin or bool(self.args)

    def describe(self) -> str:
        parts = [f"{a} ← {', '.join(src)}" for a, src in sorted(self.args.items())]
        if self.origin:
            parts.append(f"planned after reading {', '.join(self.origin)}")
        if self.goal:
            parts.append(f"the run's goal is untrusted ({', '.join(self.goal)})")
        return "; ".join(parts) or "trusted (from the user's goal)"

    @property
    def sources(self) -> list[str]:
        """Every untrusted source this step derives from, each once."""
        found = [s for src in self.args.values() for s in src] + self.origin
        return list(dict.fromkeys(found))

    def to_dict(self) -> dict[str, object]:
        return {"args": self.args, "origin": self.origin, "goal": self.goal}


def assess(
    record: StepRecord,
    records: Mapping[str, StepRecord],
    trusted_output: Callable[[str], bool] = lambda _action: False,
    untrusted_goal: Sequence[str] = (),
) -> Taint:
    """The provenance of ``record`` (whose ``args`` still hold references) in a run whose
    goal is untrusted for the reasons in ``untrusted_goal`` (empty: a person's goal)."""
    taint = Taint(goal=list(untrusted_goal))
    for name, value in record.args.items():
        sources = sorted(
            {
                s
                for ref, _ in find_refs(value)
                for s in _untrusted_sources(ref, records, trusted_output, set())
            }
        )
        if sources:
            taint.args[name] = sources
    if record.plan_version > 1:
        taint.origin = [
            r.id
            for r in records.values()
            if r.plan_version < record.plan_version and _exposed(r, trusted_output)
        ]
    return taint


def _untrusted_sources(
    step_id: str,
    records: Mapping[str, StepRecord],
    trusted_output: Callable[[str], bool],
    seen: set[str],
) -> set[str]:
    """The untrusted steps that data read from ``step_id``'s output comes from."""
    if step_id in seen:
        return set()
    seen.add(step_id)
    source = records.get(step_id)
    if source is None:
        return {step_id}  # unknown: assume the worst
    if source.action in SPECIAL_ACTIONS or not trusted_output(source.action):
        return {step_id}
    # A trusted action's output is only as trustworthy as the arguments it was given.
    inherited: set[str] = set()
    for ref, _ in find_refs(source.args):
        inherited |= _untrusted_sources(ref, records, trusted_output, seen)
    return inherited


def _exposed(r: StepRecord, trusted_output: Callable[[str], bool]) -> bool:
    """Did this step show the planner content that came from outside?"""
    if r.status is StepStatus.succeeded:
        return r.output is not None and (
            r.action in SPECIAL_ACTIONS or not trusted_output(r.action)
        )
    if r.status is StepStatus.failed:
        return bool(r.error) and not r.error.startswith(GOVERNANCE_MARK)
    return False
