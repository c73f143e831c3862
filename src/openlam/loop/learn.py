"""Learn: hand the finished run's experience to whoever learns from it.

Hooks are called in order after the outcome is known: first the run's own (the runtime
passes the memory store's), then those added process-wide with ``add_learn_hook``.
The learning issue adds plan libraries, lessons and tool statistics as more hooks.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from openlam.loop.state import Outcome

LearnHook = Callable[[Outcome, dict[str, Any]], Awaitable[None] | None]
_hooks: list[LearnHook] = []


def add_learn_hook(hook: LearnHook) -> None:
    if hook not in _hooks:
        _hooks.append(hook)


async def learn(
    outcome: Outcome, experience: dict[str, Any], hooks: list[LearnHook] | None = None
) -> None:
    import inspect

    for hook in [*(hooks or []), *_hooks]:
        result = hook(outcome, experience)
        if inspect.isawaitable(result):
            await result
