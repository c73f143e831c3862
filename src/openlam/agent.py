"""``Agent``: an agent defined in Python, for :meth:`openlam.Workforce.run`.

    clerk = Agent(id="clerk", instructions="Answer questions about orders.",
                  actions=[lookup_order, "files.read"])
    outcome = await wf.run("What is the status of order 42?", agent=clerk)

``actions`` mixes glob patterns over installed action names (``"files.*"``,
``"!payments.*"`` to exclude) with in-process actions — functions (plain or decorated
with ``@action``) and modules — which the workforce registers when the agent runs. The
agent may use exactly these: the planner's prompt lists nothing else. Agents of the
catalog (``agents/*.yaml``) are run by id instead: ``wf.run(goal, agent="operator")``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any

from openlam.errors import UserError
from openlam.runtime.admin import check_max_steps

if TYPE_CHECKING:
    from openlam.loop.perceive import AgentProfile

ID = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
ActionItem = str | Callable[..., Any] | ModuleType


@dataclass(frozen=True)
class Agent:
    """An agent: who it is, how it works and which actions it may use.

    ``id``: lower-case letters, digits and ``_`` (it names the agent in reports, audit
    records and policies). ``instructions``: its role, put at the top of the planner's
    prompt. ``actions``: glob patterns and in-process actions (see the module's doc);
    default every installed action. ``model``: a model spec for this agent only;
    ``max_steps``: its per-run step budget.
    """

    id: str
    instructions: str = "Do exactly what the goal asks, with as few steps as possible."
    actions: Sequence[ActionItem] = ("*",)
    name: str | None = None
    title: str | None = None
    model: str | None = None
    max_steps: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not ID.match(self.id):
            raise UserError(
                f"agent id {self.id!r} is not usable",
                "use lower-case letters, digits and _, starting with a letter (e.g. order_clerk)",
            )
        check_max_steps(self.max_steps, f"agent {self.id}: max_steps")
        if isinstance(self.actions, str | ModuleType) or callable(self.actions):
            object.__setattr__(self, "actions", (self.actions,))
        else:
            object.__setattr__(self, "actions", tuple(self.actions))
        for item in self.actions:
            if not (isinstance(item, str | ModuleType) or callable(item)):
                raise UserError(
                    f"agent {self.id}: {item!r} is not an action",
                    "give glob patterns over action names ('files.*'), functions or modules",
                )

    @property
    def patterns(self) -> tuple[str, ...]:
        return tuple(a for a in self.actions if isinstance(a, str))

    @property
    def in_process(self) -> list[Callable[..., Any] | ModuleType]:
        return [a for a in self.actions if not isinstance(a, str)]

    def profile(self, registered: Sequence[str]) -> AgentProfile:
        """The run request's view of this agent (``RunRequest.agent``), given the names
        under which its in-process actions were registered."""
        from openlam.loop.perceive import AgentProfile

        title = self.title or self.id.replace("_", " ")
        return AgentProfile(
            id=self.id,
            name=self.name or title.title(),
            title=title,
            instructions=" ".join(self.instructions.split()),
            actions=(*self.patterns, *(n for n in registered if n not in self.patterns)),
            model=self.model,
            max_steps=self.max_steps,
            shared_board=False,
        )
