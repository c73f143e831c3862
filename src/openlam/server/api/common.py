"""What every API module needs: the workforce and settings of the app, role checks."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
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


async def blocking(func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a blocking function (database, files) off the event loop."""
    return await asyncio.to_thread(func, *args, **kwargs)


def who(principal: Principal) -> str:
    return principal.name
