"""What every API module needs: the workforce and settings of the app, role checks."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from fastapi import Depends, Request

from openlam.server.auth import Principal, Role, require

PREFIX = "/api/v1"
T = TypeVar("T")

Viewer = Depends(require(Role.viewer))
Operator = Depends(require(Role.operator))
Approver = Depends(require(Role.approver))
Admin = Depends(require(Role.admin))


def workforce(request: Request) -> Any:
    return request.app.state.workforce


def settings(request: Request) -> Any:
    return request.app.state.settings


# The API's own threads: runs keep the loop's default pool busy (a slow action holds a
# thread for its whole call), and a listing must not wait behind them.
_pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="openlam-api")


async def blocking(func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a blocking function (database, files) off the event loop, on the API's threads."""
    return await asyncio.get_running_loop().run_in_executor(
        _pool, functools.partial(func, *args, **kwargs)
    )


def who(principal: Principal) -> str:
    return principal.name
