"""effects: a journal of what external actions delivered, by idempotency key.

For a peer that cannot deduplicate (a Slack or Mattermost webhook, a form in a web
page), the action records its output here the moment the peer acknowledged it.
A step that runs again with the same idempotency key — the runtime recovering a step
that was in flight when its process died, or the action's own retry — finds the
earlier delivery (:func:`recorded`, the spec's ``find_effect``) and returns it instead
of delivering twice. What remains is the instant between the peer's answer and the
journal's commit: a crash exactly then repeats the delivery, which the action's docs
say ("exactly once, except a crash between the peer's answer and the journal").

The journal lives in the project database (table ``action_effects``), next to the
CRM and the sent-mail log.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import Column, DateTime, MetaData, String, Table, Text, insert, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from openlam.actions.plugin_config import settings_of
from openlam.actions.spec import ActionContext, FindEffect
from openlam.errors import ActionError
from openlam.memory.engines import engine_for

_meta = MetaData()
action_effects = Table(
    "action_effects",
    _meta,
    Column("idempotency_key", String(300), primary_key=True),
    Column("action", String(200), primary_key=True),
    Column("run_id", String(200)),
    Column("output", Text, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
)


def _url(ctx: ActionContext) -> str:
    return settings_of(ctx).app_database_url


def lookup(ctx: ActionContext, action: str) -> Any:
    """The output recorded for this step of ``action``, or None."""
    try:
        with engine_for(_url(ctx), _meta).connect() as conn:
            row = conn.execute(
                select(action_effects.c.output).where(
                    action_effects.c.idempotency_key == ctx.idempotency_key,
                    action_effects.c.action == action,
                )
            ).first()
    except SQLAlchemyError as exc:
        raise ActionError(
            f"cannot check whether {action} already delivered this step: the "
            f"project database failed ({exc.__class__.__name__}); nothing was "
            "sent",
            transient=True,
        ) from None
    return None if row is None else json.loads(row.output)


def record(ctx: ActionContext, action: str, output: Any) -> Any:
    """Remember that this step of ``action`` was delivered, with its output; returns it."""
    try:
        with engine_for(_url(ctx), _meta).begin() as conn:
            conn.execute(
                insert(action_effects).values(
                    idempotency_key=ctx.idempotency_key,
                    action=action,
                    run_id=ctx.run_id or None,
                    output=json.dumps(output),
                    recorded_at=datetime.now(UTC),
                )
            )
    except IntegrityError:
        pass  # recorded by an earlier attempt
    except SQLAlchemyError as exc:
        raise ActionError(
            f"{action} WAS delivered, but recording it in the project database "
            f"failed ({exc.__class__.__name__}); do not run it again"
        ) from None
    return output


T = TypeVar("T")


async def once(ctx: ActionContext, action: str, deliver: Callable[[], Awaitable[T]]) -> T:
    """Run ``deliver()`` unless the journal says this step of ``action`` already did;
    record its output the moment it returns. Returns the output, earlier or new."""
    earlier = await asyncio.to_thread(lookup, ctx, action)
    if earlier is not None:
        return earlier
    output = await deliver()
    return await asyncio.to_thread(record, ctx, action, output)


def recorded(action: str) -> FindEffect:
    """A ``find_effect`` for ``action``: the output the journal holds for the step."""

    async def find_effect(args: dict[str, Any], ctx: ActionContext) -> Any:
        return await asyncio.to_thread(lookup, ctx, action)

    return find_effect
