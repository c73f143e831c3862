"""Where blocking action code runs: a thread pool of its own.

The process's default pool (``asyncio.to_thread``: DBOS's, at most ``[runtime] threads``)
carries the bookkeeping — checkpoints, audit records, DBOS's own writes — whose calls are
short. A synchronous action (a plugin calling ``requests.get``, an SMTP send, an IMAP
search) can hold its thread for seconds; on that pool a burst of them would hold up every
other run's checkpoints. So blocking action code runs here instead, up to
``[runtime] action_threads`` at once (default 40, like Starlette's limit for synchronous
endpoints); beyond that, calls wait for a free thread.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar, cast

T = TypeVar("T")

ACTION_THREADS = 40

_limit = ACTION_THREADS
_pool: ThreadPoolExecutor | None = None
_lock = threading.Lock()


def configure(limit: int) -> None:
    """Set the pool's size. A pool of another size already made finishes what it has
    and lets its threads go; the next call starts a pool of the new size."""
    global _limit, _pool
    with _lock:
        if _pool is not None and limit != _limit:
            _pool.shutdown(wait=False)
            _pool = None
        _limit = limit


async def in_action_thread(func: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """``func(*args, **kwargs)`` on the actions' pool, with the caller's context
    variables (as ``asyncio.to_thread`` does on the default pool)."""
    global _pool
    call = functools.partial(contextvars.copy_context().run, func, *args, **kwargs)
    loop = asyncio.get_running_loop()
    with _lock:  # submitted under the lock: configure() cannot shut this pool in between
        if _pool is None:
            _pool = ThreadPoolExecutor(_limit, thread_name_prefix="openlam-action")
        future = loop.run_in_executor(_pool, call)
    return cast(T, await future)
