"""The two fake models every suite is checked with: the **oracle** replays each task's
ground-truth plan (it must score 1.0 goal-done, or the suite's checker or environment is
wrong), the **negative control** makes one wrong call per task (it must score low, or the
checker cannot tell right from wrong).

Both are pydantic-ai FunctionModels registered under a model name, so a run reaches them
the way it reaches any provider. Each answers by finding which known goal the request is
about (the task's, or a delegated child's) and returning that goal's plan.
"""

from __future__ import annotations

import json
from typing import Any

ORACLE = "eval:oracle"
NEGATIVE = "eval:negative"
CONTROLS = (ORACLE, NEGATIVE)


def plan_for(plans: dict[str, dict[str, Any]], chat: list[dict[str, str]]) -> dict[str, Any]:
    """The plan of the goal the request is about (the loop asks ``Goal: …``); an empty
    plan when asked to replan or repair (a control does not improvise)."""
    users = [m["content"] for m in chat if m["role"] == "user"]
    if len(users) != 1 or "\nSo far:" in users[0]:
        return {"steps": [], "note": "the control model has nothing more to do"}
    goal = users[0].removeprefix("Goal: ").strip()
    known = {g.strip(): plan for g, plan in plans.items()}
    return known.get(goal) or {"steps": [], "note": "the control model knows no plan for this goal"}


_current: dict[str, dict[str, dict[str, Any]]] = {ORACLE: {}, NEGATIVE: {}}


def register_controls(
    plans: dict[str, dict[str, Any]], negative: dict[str, dict[str, Any]]
) -> None:
    """Make ``eval:oracle`` and ``eval:negative`` answer with these plans from now on.

    The models are registered once and read the current plans when asked: a model is
    built once per name and process (``models.resolve`` caches it)."""
    from openlam.models import register_model, registered_model

    _current[ORACLE], _current[NEGATIVE] = plans, negative
    for name in CONTROLS:
        if registered_model(name) is None:
            register_model(name, _control_model(name))


def _control_model(name: str) -> Any:
    from pydantic_ai.messages import ModelResponse, TextPart
    from pydantic_ai.models.function import FunctionModel

    from openlam.testing import as_chat

    def respond(messages: list[Any], _info: Any) -> ModelResponse:
        plan = plan_for(_current[name], as_chat(messages))
        return ModelResponse(parts=[TextPart(content=json.dumps(plan))])

    return FunctionModel(respond, model_name=name)
