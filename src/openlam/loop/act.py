"""Act: run one step's action with a timeout, retries for transient errors, and a check
of its effect. Never raises: every outcome comes back as a :class:`StepResult`.

A step that was in flight when its process died (``resumed`` > 0) is handled by the
action's delivery guarantee: if the action can tell whether its effect already happened
(``find_effect``), it is asked first and the step is not repeated when it did; otherwise
it runs again and the result says what that means (harmless, deduplicated by the peer
through the idempotency key, or at least once).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import to_jsonable_python

from openlam.actions.registry import ActionRegistry
from openlam.actions.spec import ActionContext, ActionSpec
from openlam.config import Settings
from openlam.errors import ActionError, CapabilityGap
from openlam.loop.overhead import working
from openlam.loop.state import Gap, GapKind, StepResult, StepStatus

BACKOFF_SECONDS = 0.25


class ActionCall(BaseModel):
    """One action to run for a step: plain data, so a journal can record it."""

    run_id: str
    step_id: str
    action: str
    args: dict[str, Any]
    idempotency_key: str
    workspace: str
    root_id: str
    timeout: float
    retries: int
    tainted: bool = False  # derived from untrusted content (what it writes stays so)


ActionCaller = Callable[[ActionCall], Awaitable[StepResult]]
ResumableCaller = Callable[[ActionCall, int], Awaitable[StepResult]]
"""An action caller told how often the step was interrupted in flight before (0: never)."""


async def execute(
    spec: ActionSpec,
    ctx: ActionContext,
    args: dict[str, Any],
    *,
    timeout: float,
    retries: int,
    resumed: int = 0,
) -> StepResult:
    with working():  # the action's own time, not the run's overhead
        return await _execute(spec, ctx, args, timeout=timeout, retries=retries, resumed=resumed)


async def _execute(
    spec: ActionSpec,
    ctx: ActionContext,
    args: dict[str, Any],
    *,
    timeout: float,
    retries: int,
    resumed: int = 0,
) -> StepResult:
    if resumed:
        return await _resume(spec, ctx, args, timeout=timeout, retries=retries)
    started = time.perf_counter()
    attempts = 0
    error = ""
    limit = spec.timeout or timeout
    while attempts <= retries:
        attempts += 1
        try:
            output = await asyncio.wait_for(spec.call(ctx, args), limit)
            output = to_jsonable_python(output, fallback=str)
            problem = await spec.check_effect(args, output, ctx)
            if problem:
                return _result(
                    StepStatus.failed, None, f"not verified: {problem}", attempts, started
                )
            return _result(
                StepStatus.succeeded,
                output,
                None,
                attempts,
                started,
                verified=spec.verify is not None,
            )
        except ValidationError as exc:
            errs = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            return _result(StepStatus.failed, None, f"invalid arguments: {errs}", attempts, started)
        except TimeoutError:
            error, transient = f"timed out after {limit:g}s", True
        except CapabilityGap as exc:  # not a failure: something the workforce lacks
            result = _result(StepStatus.blocked, None, str(exc), attempts, started)
            result.gap = Gap(kind=GapKind.capability, what=exc.what, why=exc.why)
            return result
        except ActionError as exc:
            error, transient = str(exc), exc.transient
        except Exception as exc:  # a plugin's bug is this step's failure, not the run's crash
            error, transient = f"{type(exc).__name__}: {exc}", False
        if not transient:
            break
        if attempts <= retries:
            await asyncio.sleep(BACKOFF_SECONDS * 2 ** (attempts - 1))
    if attempts > 1:
        error = f"{error} (after {attempts} attempts)"
    return _result(StepStatus.failed, None, error, attempts, started)


async def _resume(
    spec: ActionSpec, ctx: ActionContext, args: dict[str, Any], *, timeout: float, retries: int
) -> StepResult:
    how = spec.delivery
    find_effect = spec.find_effect
    if find_effect is not None:
        try:
            found = await asyncio.wait_for(find_effect(args, ctx), spec.timeout or timeout)
        except Exception as exc:  # cannot tell: running again is at least once
            found, how = None, "at least once"
            note = f"could not check whether it already happened ({exc}); "
        else:
            note = ""
        if found is not None:
            return StepResult.succeeded(
                to_jsonable_python(found, fallback=str),
                verified=True,
                note=resume_note("checked", found=True),
            )
        result = await execute(spec, ctx, args, timeout=timeout, retries=retries)
        result.note = note + resume_note(how, found=False)
        return result
    result = await execute(spec, ctx, args, timeout=timeout, retries=retries)
    result.note = resume_note(how)
    return result


def resume_note(delivery: str, found: bool | None = None) -> str:
    """What the report says about a step that was in flight when its process died."""
    if delivery == "idempotent":
        return "interrupted and run again (repeating it is harmless)"
    if delivery == "keyed":
        return (
            "interrupted and sent again with the same idempotency key (the receiver "
            "ignores a repeat): exactly once"
        )
    if delivery == "checked":
        return (
            "interrupted after it took effect: the effect was found, not repeated"
            if found
            else "interrupted before it took effect (checked): done once"
        )
    return "interrupted mid-flight and run again: it may have happened twice (at least once)"


def _result(
    status: StepStatus,
    output: Any,
    error: str | None,
    attempts: int,
    started: float,
    *,
    verified: bool = False,
) -> StepResult:
    return StepResult(
        status=status,
        output=output,
        error=error,
        attempts=attempts,
        duration_ms=round((time.perf_counter() - started) * 1000, 2),
        verified=verified,
    )


def action_caller(
    lookup: Callable[[str], ActionSpec | None],
    settings: Callable[[], Settings | None],
    secret: Callable[[str], str | None] | None = None,
) -> ResumableCaller:
    """Turns an :class:`ActionCall` into a result; ``resumed`` > 0 when the step was in
    flight when an earlier process died."""

    async def call(c: ActionCall, resumed: int = 0) -> StepResult:
        spec = lookup(c.action)
        if spec is None:
            return StepResult.failed(f"action {c.action} is not installed here")
        current = settings()
        ctx = ActionContext(
            run_id=c.run_id,
            step_id=c.step_id,
            idempotency_key=c.idempotency_key,
            # the workspace of the process that runs the step, not the path recorded when
            # the run was submitted: a run resumed after its workspace was moved, or taken
            # by a worker on another machine, must not write where that folder once was
            workspace=current.workspace if current is not None else Path(c.workspace),
            settings=current,
            extras={"root_id": c.root_id, "tainted": c.tainted},
        )
        if secret is not None:
            ctx.secret = secret
        return await execute(
            spec, ctx, c.args, timeout=c.timeout, retries=c.retries, resumed=resumed
        )

    return call


def local_action_call(
    registry: ActionRegistry,
    settings: Settings | None = None,
    secret: Callable[[str], str | None] | None = None,
) -> ActionCaller:
    """Run actions in-process with no checkpoint: for the non-durable path and its tests."""
    call = action_caller(registry.get, lambda: settings, secret)

    async def once(c: ActionCall) -> StepResult:
        return await call(c, 0)

    return once
