"""Perceive: gather what the agent knows before it plans."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from openlam.actions.registry import ActionRegistry
from openlam.actions.spec import ActionSpec

DETAILED_ACTIONS = 10
SHARED_ACTIONS = ("notes.*",)  # the board of a delegation tree is every member's to use


@dataclass(frozen=True)
class AgentProfile:
    id: str = "operator"
    name: str = "Operator"
    title: str = "general operator"
    instructions: str = "Do exactly what the goal asks, with as few steps as possible."
    actions: tuple[str, ...] = ("*",)
    department: str = ""
    manager: str | None = None
    model: str | None = None
    max_steps: int | None = None  # the catalog's per-run budget for this agent
    max_model_requests: int | None = None


@dataclass
class Perception:
    goal: str
    agent: AgentProfile
    actions: ActionRegistry
    context: list[str] = field(default_factory=list)

    def shortlist(self, limit: int = DETAILED_ACTIONS) -> tuple[list[ActionSpec], list[str]]:
        """The actions to describe in full, and the names of the rest.

        With many actions (plugins, MCP servers) describing them all costs thousands of
        prompt tokens and confuses small models; those most related to the goal get a
        full signature, the others are listed by name and remain usable."""
        specs = list(self.actions)
        if len(specs) <= limit:
            return specs, []
        goal = _words(self.goal)

        def score(spec: ActionSpec) -> int:  # a word of the name counts more than the prose
            return 3 * len(goal & _words(spec.name)) + len(goal & _words(spec.summary))

        ranked = sorted(specs, key=score, reverse=True)
        chosen = [s for s in ranked[:limit] if score(s) > 0]
        names = [s.name for s in specs if s not in chosen]
        return chosen, names


def perceive(goal: str, agent: AgentProfile, registry: ActionRegistry,
             context: list[str] | None = None) -> Perception:
    """The agent sees only the actions it is permitted; context is prior knowledge
    (recalled experience, a parent's notes) that fits in a few lines."""
    permitted = (*agent.actions, *SHARED_ACTIONS)
    return Perception(goal=goal.strip(), agent=agent, actions=registry.subset(permitted),
                      context=list(context or []))


@lru_cache(maxsize=4096)  # action names and summaries repeat on every run
def _words(text: str) -> frozenset[str]:
    return frozenset(w.rstrip("s") for w in re.findall(r"[a-z]{3,}", text.lower()))
