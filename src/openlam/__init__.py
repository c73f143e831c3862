"""OpenLAM: an open-source Large Action Model platform.

The public API is imported lazily so that ``import openlam`` stays fast.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

# httpx imports its command-line client (rich, pygments, click) on every import when
# they are installed, as they are here; OpenLAM never runs it. Blocking that one module
# (httpx falls back to a stub ``main``) saves ≈ 5 MB and ≈ 0.05 s in every process.
if "httpx" not in sys.modules:
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]

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
