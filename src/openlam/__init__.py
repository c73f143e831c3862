"""OpenLAM: an open-source Large Action Model platform.

The public API is imported lazily so that ``import openlam`` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "Workforce": "openlam.workforce",
    "Agent": "openlam.agent",
    "action": "openlam.actions.spec",
    "ActionContext": "openlam.actions.spec",
    "Risk": "openlam.actions.spec",
    "Plan": "openlam.loop.state",
    "Step": "openlam.loop.state",
    "Outcome": "openlam.loop.state",
    "RunStatus": "openlam.loop.state",
    "AgentProfile": "openlam.loop.perceive",
}

if TYPE_CHECKING:
    from openlam.actions.spec import ActionContext, Risk, action
    from openlam.agent import Agent
    from openlam.loop.perceive import AgentProfile
    from openlam.loop.state import Outcome, Plan, RunStatus, Step
    from openlam.workforce import Workforce

__all__ = [
    "ActionContext",
    "Agent",
    "AgentProfile",
    "Outcome",
    "Plan",
    "Risk",
    "RunStatus",
    "Step",
    "Workforce",
    "action",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'openlam' has no attribute {name!r}")
