"""Perceive: gather what the agent knows before it plans."""

from __future__ import annotations

from dataclasses import dataclass, field

from openlam.actions.registry import ActionRegistry


@dataclass(frozen=True)
class AgentProfile:
    id: str = "operator"
    name: str = "Operator"
    title: str = "general operator"
    instructions: str = "Do exactly what the goal asks, with as few steps as possible."
    actions: tuple[str, ...] = ("*",)


@dataclass
class Perception:
    goal: str
    agent: AgentProfile
    actions: ActionRegistry
    context: list[str] = field(default_factory=list)


def perceive(goal: str, agent: AgentProfile, registry: ActionRegistry,
             context: list[str] | None = None) -> Perception:
    """The agent sees only the actions it is permitted; context is prior knowledge
    (recalled experience, a parent's notes) that fits in a few lines."""
    return Perception(goal=goal.strip(), agent=agent, actions=registry.subset(agent.actions),
                      context=list(context or []))
