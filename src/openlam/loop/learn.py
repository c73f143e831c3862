"""Learn: hand the finished run's experience to whoever learns from it.

Hooks are called in order after the outcome is known: the run's own, given in its
``RunEnv.learn_hooks`` (the runtime passes the memory store's, governance's and the
learner's). There is no process-wide list: whoever runs the loop passes the hooks.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from openlam.loop.state import Outcome

LearnHook = Callable[[Outcome, dict[str, Any]], Awaitable[None] | None]


async def learn(
    outcome: Outcome, experience: dict[str, Any], hooks: list[LearnHook] | None = None
) -> None:
    import inspect

    for hook in hooks or []:
        result = hook(outcome, experience)
        if inspect.isawaitable(result):
            await result
