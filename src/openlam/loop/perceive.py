"""Perceive: gather what the agent knows before it plans."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from pydantic import BaseModel, ConfigDict

from openlam.actions.registry import ActionRegistry
from openlam.actions.spec import ActionSpec

DETAILED_ACTIONS = 10
MAX_DETAILED_ACTIONS = 32  # when the goal names a source, or the agent is given one
SHARED_ACTIONS = ("notes.*",)  # the board of a delegation tree is every member's to use
IMPORTED = ("mcp:", "openapi:", "python")  # sources a user added: MCP, OpenAPI, in-process
GENERIC_TITLE_WORDS = frozenset(
    {
        "api",
        "apis",
        "service",
        "server",
        "mcp",
        "openapi",
        "rest",
        "the",
        "and",
        "for",
        "tool",
        "tools",
        "bench",
        "http",
        "json",
        "version",
        "spec",
    }
)


class AgentProfile(BaseModel):
    """The core loop's view of the agent a run acts as (``RunRequest.agent``): who it
    is, its instructions, the action patterns it may use (``"!x.*"`` excludes) and its
    per-run budget. Made by the catalog (``Catalog.profile``), by an in-code
    :class:`openlam.Agent`, or the default: the general operator with every action."""

    model_config = ConfigDict(frozen=True)

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
    shared_board: bool = True  # offered the delegation tree's notes board (notes.*)


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
        full signature, the others are listed by name and remain usable. First every
        action of a source the goal names by its name or title ("the airline service" →
        ``airline.*``, or ``tau2.*`` titled "τ²-bench airline"), then
        those of sources the agent was given by name (its own patterns, not ``*``) that
        the user added (MCP, OpenAPI, Python), then by the words the goal shares with an
        action's name (3 each) and summary (1 each); up to ``limit``, or up to
        :data:`MAX_DETAILED_ACTIONS` for a named or given source."""
        specs = list(self.actions)
        if len(specs) <= limit:
            return specs, []
        goal = _words(self.goal)
        titles = self.actions.titles

        def names(prefix: str) -> frozenset[str]:  # the words that name a source
            title = _words(titles.get(prefix, "")) - GENERIC_TITLE_WORDS
            return _words(prefix.replace("_", " ").replace("-", " ")) | title

        named = {
            prefix for prefix in {s.name.partition(".")[0] for s in specs} if names(prefix) & goal
        }
        specific = [p for p in self.agent.actions if p != "*" and not p.startswith("!")]
        given = (
            {s.name for s in self.actions.matching(specific) if s.source.startswith(IMPORTED)}
            if specific
            else set()
        )

        def words(spec: ActionSpec) -> int:  # a word of the name counts more than the prose
            return 3 * len(goal & _words(spec.name)) + len(goal & _words(spec.summary))

        ranks = {
            s.name: (s.name.partition(".")[0] in named, s.name in given, words(s)) for s in specs
        }  # each once: every run of every agent ranks them all
        ranked = sorted(specs, key=lambda s: ranks[s.name], reverse=True)
        wide = sum(1 for s in specs if any(ranks[s.name][:2]))
        cap = max(limit, min(wide, MAX_DETAILED_ACTIONS))
        chosen = [s for s in ranked[:cap] if any(ranks[s.name])]
        detailed = {s.name for s in chosen}  # by name: comparing specs compares every field
        return chosen, [s.name for s in specs if s.name not in detailed]


def perceive(
    goal: str, agent: AgentProfile, registry: ActionRegistry, context: list[str] | None = None
) -> Perception:
    """The agent sees only the actions it is permitted; context is prior knowledge
    (recalled experience, a parent's notes) that fits in a few lines."""
    permitted = (*agent.actions, *(SHARED_ACTIONS if agent.shared_board else ()))
    return Perception(
        goal=goal.strip(),
        agent=agent,
        actions=registry.subset(permitted),
        context=list(context or []),
    )


@lru_cache(maxsize=4096)  # action names and summaries repeat on every run
def _words(text: str) -> frozenset[str]:
    return frozenset(w.rstrip("s") for w in re.findall(r"[a-z]{3,}", text.lower()))
