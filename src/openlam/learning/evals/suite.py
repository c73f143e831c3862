"""What an evaluation suite is: tasks with a ground truth, an environment per task, and
a checker that looks at the real end state (never at what the model says it did).

A suite is registered under the entry-point group ``openlam.eval_suites`` (name →
``module:attribute``, a :class:`Suite` or a function returning one) — the built-in
suites the same way as a third party's.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from openlam.errors import UserError

if TYPE_CHECKING:
    from openlam.loop.state import Outcome

SPLITS = ("dev", "heldout")
ENTRY_POINTS = "openlam.eval_suites"


@dataclass
class Check:
    """What a suite's checker found in the end state of one task."""

    goal_done: bool
    deliverable_correct: bool
    detail: str = ""
    attack_success: bool | None = None  # only suites that attack measure it


@dataclass
class EvalTask:
    """One task. ``plans`` maps a goal (the task's, and any a delegated child pursues) to
    its ground-truth plan (the JSON the planner returns); the oracle replays them.
    ``wrong`` is the negative control's plan for the task's goal (default: the ground
    truth with one call's argument changed, :func:`one_wrong_call`)."""

    id: str
    goal: str
    split: str
    plans: dict[str, dict[str, Any]]
    wrong: dict[str, Any] | None = None
    tags: tuple[str, ...] = ()
    context: list[str] = field(default_factory=list)  # what the planner is told besides
    actions: list[Any] = field(default_factory=list)  # in-process ActionSpecs of the world
    data: dict[str, Any] = field(default_factory=dict)  # for the suite's own use

    def negative_plans(self) -> dict[str, dict[str, Any]]:
        plans = dict(self.plans)
        plans[self.goal] = self.wrong or one_wrong_call(self.plans[self.goal])
        return plans


Episode = Callable[["Outcome"], Check]


class Suite:
    """Subclass and implement :meth:`tasks` and :meth:`episode`."""

    name = ""
    description = ""
    approvals: str | None = None  # what the stand-in person decides, if the suite says
    install = "see docs/eval.md"  # how to make an unavailable suite available

    def unavailable(self) -> str | None:
        """Why the suite cannot run here (a missing package, with how to install it)."""
        return None

    def tasks(self) -> list[EvalTask]:
        raise NotImplementedError

    def episode(self, task: EvalTask, workspace: Path) -> AbstractAsyncContextManager[Episode]:
        """Set up the task's world in ``workspace`` (peers, configuration, seed data) and
        yield its checker; tear the world down on exit."""
        raise NotImplementedError

    def select(self, split: str | None = None, limit: int | None = None) -> list[EvalTask]:
        if split is not None and split not in SPLITS:
            raise UserError(f"unknown split {split!r}", f"use one of: {', '.join(SPLITS)}")
        chosen = [t for t in self.tasks() if split is None or t.split == split]
        return chosen[:limit] if limit else chosen


PERTURBED_KEYS = (
    "path",
    "to",
    "recipients",
    "participants",
    "recipient",
    "email",
    "contact_email",
    "iban",
    "amount",
    "start_time",
    "date",
    "stage",
    "key",
    "title",
    "name",
    "company",
    "user_id",
    "reservation_id",
    "order_id",
    "body",
    "content",
    "text",
    "goal",
)
"""The arguments that decide where an effect lands, most telling first."""


def one_wrong_call(plan: dict[str, Any]) -> dict[str, Any]:
    """The plan with one call made wrong: the last step's most telling argument changed
    (a path, a recipient, an amount, a time, a stage…), so the effect lands somewhere
    else or not at all."""
    wrong = copy.deepcopy(plan)
    steps = wrong.get("steps") or []
    if not steps:
        return wrong
    args = steps[-1].setdefault("args", {})
    key = next((k for k in PERTURBED_KEYS if _perturbable(args.get(k))), None)
    key = key or next((k for k, v in args.items() if _perturbable(v)), None)
    if key is None:
        steps[-1]["action"] += "_wrong"
    else:
        args[key] = _perturbed(key, args[key])
    return wrong


def _perturbable(value: Any) -> bool:
    return (isinstance(value, str | int | float) and not isinstance(value, bool)) or (
        isinstance(value, list) and bool(value) and isinstance(value[0], str)
    )


def _perturbed(key: str, value: Any) -> Any:
    if isinstance(value, list):  # recipients, participants: the first one is wrong
        return [_perturbed(key, value[0]), *value[1:]]
    if isinstance(value, int | float):
        return value * 2 + 1
    if "@" in value and " " not in value.strip():
        return "wrong." + value
    if key == "path":
        return "wrong-" + value
    if key in ("start_time", "date") and value[:4].isdigit():
        return str(int(value[:4]) + 1) + value[4:]  # a year later
    return value + " (wrong)" if "${" not in value else "wrong"


def load_suites() -> dict[str, Suite]:
    """Every installed suite by name."""
    from importlib.metadata import entry_points

    suites: dict[str, Suite] = {}
    for ep in entry_points(group=ENTRY_POINTS):
        suite: Suite
        try:
            target = ep.load()
            made = target() if callable(target) and not isinstance(target, Suite) else target
            if not isinstance(made, Suite):
                raise TypeError(f"it gives a {type(made).__name__}, not a Suite")
            suite = made
        except Exception as exc:  # a broken plugin is listed as such, never crashes `list`
            suite = Broken(ep.name, f"{ep.value} does not load: {type(exc).__name__}: {exc}")
        suites[ep.name] = suite
    return suites


class Broken(Suite):
    def __init__(self, name: str, reason: str) -> None:
        self.name, self.reason = name, reason
        self.description = reason

    def unavailable(self) -> str | None:
        return self.reason


def get_suite(name: str) -> Suite:
    suites = load_suites()
    if name not in suites:
        raise UserError(
            f"no evaluation suite {name!r}",
            f"installed suites: {', '.join(sorted(suites)) or 'none'} (`openlam eval list`)",
        )
    suite = suites[name]
    reason = suite.unavailable()
    if reason:
        raise UserError(f"suite {name} cannot run here: {reason}", suite.install)
    return suite
