"""Helpers for testing with no real model: a scripted planner and a one-call goal runner.

The scripted model is pydantic-ai's FunctionModel, so requests take the same path as a
real provider's (message conversion, structured-output parameters, usage accounting).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from openlam.loop.state import Outcome

Reply = dict[str, Any] | str
"""A plan dict (sent as JSON) or raw text (to test malformed output)."""


class ScriptedModel:
    """Replies with the given plans in order; after the last, with an empty plan.

    ``replies`` may also be a function of the chat messages (list of {role, content})."""

    def __init__(self, replies: Sequence[Reply] | Callable[[list[dict[str, str]]], Reply]):
        from pydantic_ai.messages import ModelResponse, TextPart
        from pydantic_ai.models.function import FunctionModel

        self.replies = replies
        self.requests: list[list[dict[str, str]]] = []

        def respond(messages: list[Any], _info: Any) -> ModelResponse:
            chat = _as_chat(messages)
            self.requests.append(chat)
            if callable(self.replies):
                reply = self.replies(chat)
            else:
                index = len(self.requests) - 1
                reply = self.replies[index] if index < len(self.replies) else {"steps": []}
            text = reply if isinstance(reply, str) else json.dumps(reply)
            return ModelResponse(parts=[TextPart(content=text)])

        self.model = FunctionModel(respond)


def scripted_model(name: str, replies: Sequence[Reply] | Callable[..., Reply]) -> ScriptedModel:
    """Register a scripted model under ``name`` (e.g. "test:brief") and return it."""
    from openlam.models import register_model

    scripted = ScriptedModel(replies)
    register_model(name, scripted.model)
    return scripted


async def run_goal(
    goal: str, plans: Sequence[Reply], workspace: str | Path, **options: Any
) -> Outcome:
    """Run ``goal`` durably in ``workspace`` with a model that answers with ``plans``."""
    from openlam.workforce import Workforce

    name = f"test:scripted-{id(plans)}"
    scripted_model(name, plans)
    async with Workforce(workspace, model=name) as wf:
        return await wf.run(goal, **options)


def _as_chat(messages: list[Any]) -> list[dict[str, str]]:
    from pydantic_ai.messages import (
        ModelRequest,
        ModelResponse,
        SystemPromptPart,
        TextPart,
        UserPromptPart,
    )

    chat: list[dict[str, str]] = []
    for m in messages:
        if isinstance(m, ModelRequest):
            for p in m.parts:
                if isinstance(p, SystemPromptPart):
                    chat.append({"role": "system", "content": p.content})
                elif isinstance(p, UserPromptPart) and isinstance(p.content, str):
                    chat.append({"role": "user", "content": p.content})
        elif isinstance(m, ModelResponse):
            text = "".join(p.content for p in m.parts if isinstance(p, TextPart))
            chat.append({"role": "assistant", "content": text})
    return chat


as_chat = _as_chat  # the chat a FunctionModel was sent, as {role, content} dicts
