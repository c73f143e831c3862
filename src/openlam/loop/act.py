"""Act: run one step's action with a timeout, retries for transient errors, and a check
of its effect. Never raises: every outcome comes back as a result to observe."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from pydantic import ValidationError
from pydantic_core import to_jsonable_python

from openlam.actions.spec import ActionContext, ActionSpec
from openlam.errors import ActionError, CapabilityGap

BACKOFF_SECONDS = 0.25


async def execute(spec: ActionSpec, ctx: ActionContext, args: dict[str, Any], *,
                  timeout: float, retries: int) -> dict[str, Any]:
    """Returns {status: succeeded|failed, output, error, attempts, duration_ms}."""
    started = time.perf_counter()
    attempts = 0
    error = ""
    limit = spec.timeout or timeout
    while attempts <= retries:
        attempts += 1
        try:
            output = await asyncio.wait_for(spec.call(ctx, args), limit)
            output = to_jsonable_python(output, fallback=str)
            problem = spec.verify(args, output, ctx) if spec.verify else None
            if problem:
                return _result("failed", None, f"not verified: {problem}", attempts, started)
            return _result("succeeded", output, None, attempts, started)
        except ValidationError as exc:
            errs = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            return _result("failed", None, f"invalid arguments: {errs}", attempts, started)
        except TimeoutError:
            error, transient = f"timed out after {limit:g}s", True
        except CapabilityGap as exc:  # not a failure: something the workforce lacks
            return {**_result("blocked", None, str(exc), attempts, started),
                    "gap": {"what": exc.what, "why": exc.why}}
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
    return _result("failed", None, error, attempts, started)


def _result(status: str, output: Any, error: str | None, attempts: int,
            started: float) -> dict[str, Any]:
    return {"status": status, "output": output, "error": error, "attempts": attempts,
            "duration_ms": round((time.perf_counter() - started) * 1000, 2)}
