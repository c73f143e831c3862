"""Runs that wait for a person: an approval, or an answer to a question.

What a person decides is stored (``gov_approvals``, ``questions``) and never changes
once made, so a waiting run simply re-reads the store: after a crash the replayed run
reads the same decision and takes the same path, in whatever order its concurrent
waits end. A decision made in this process wakes the run at once (:class:`Wakeups`);
one made elsewhere (another terminal, the server) is seen within ``poll_seconds``.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")
POLL_SECONDS = 1.0


class Wakeups:
    """In-process wake-up calls for waits, by key; safe to ring from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: dict[str, list[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = {}

    async def sleep(self, key: str, seconds: float) -> None:
        """Sleep up to ``seconds``, less if :meth:`wake` is called for ``key``."""
        event = asyncio.Event()
        entry = (asyncio.get_running_loop(), event)
        with self._lock:
            self._waiting.setdefault(key, []).append(entry)
        try:
            await asyncio.wait_for(event.wait(), seconds)
        except TimeoutError:
            pass
        finally:
            with self._lock:
                waiting = self._waiting.get(key, [])
                if entry in waiting:
                    waiting.remove(entry)
                if not waiting:
                    self._waiting.pop(key, None)

    def wake(self, key: str) -> None:
        with self._lock:
            waiting = list(self._waiting.get(key, []))
        for loop, event in waiting:
            if not loop.is_closed():
                loop.call_soon_threadsafe(event.set)


async def until(
    read: Callable[[], T | None],
    *,
    key: str,
    wakeups: Wakeups,
    deadline: Callable[[], float],
    poll_seconds: float = POLL_SECONDS,
) -> T | None:
    """``read()``'s first non-None value (read in a thread: it queries the database), or
    None once ``deadline()`` — seconds left — reaches 0."""
    while True:
        found = await asyncio.to_thread(read)
        if found is not None:
            return found
        left = deadline()
        if left <= 0:
            return None
        await wakeups.sleep(key, min(poll_seconds, left))


def approval_wait(
    store: Any,
    wakeups: Wakeups,
    waiting: Callable[[str], contextlib.AbstractContextManager[None]],
    stop_reason: Callable[[str], str | None] = lambda _run: None,
    poll_seconds: float = POLL_SECONDS,
):
    """The gate's wait for an approval decision (the store expires it when it is due).
    A run that is cancelled or passes its deadline stops waiting: the approval is
    returned still pending (not granted), so the step does not run."""
    from openlam.governance.approvals import PENDING, Approval

    async def wait(approval: Approval) -> Approval:
        with waiting(approval.run_id):
            while True:
                current = await asyncio.to_thread(store.get, approval.id)
                if current.status != PENDING:
                    return current
                if await asyncio.to_thread(stop_reason, approval.run_id):
                    return current
                left = max(current.seconds_left(store.clock()), 0.01)
                await wakeups.sleep(approval_key(approval.id), min(poll_seconds, left))

    return wait


def approval_key(approval_id: str) -> str:
    return f"approval:{approval_id}"


def question_key(run_id: str, step_id: str) -> str:
    return f"question:{run_id}:{step_id}"
