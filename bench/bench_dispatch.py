"""Dispatch overhead of one action call (issue 3): registry lookup + argument validation +
the call itself, for an action that does nothing, so the figure is OpenLAM's own cost.

Two kinds of action, as they arrive in the registry:

* a Python ``@action`` (arguments validated by its pydantic model);
* a dynamic-source spec (MCP tool / OpenAPI operation: arguments validated by its JSON
  schema through ``ActionSpec.validator``).

Each is measured through ``spec.call`` (lookup + validation + call) and through the act
phase's ``execute`` (adds the timeout, retry bookkeeping and JSON conversion of the
output, as every step of a run pays).

    python bench/bench_dispatch.py [--calls 20000] [--rounds 7]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from openlam.actions.registry import ActionRegistry, load_plugins  # noqa: E402
from openlam.actions.spec import (  # noqa: E402
    ActionContext,
    ActionSpec,
    Risk,
    action,
    json_schema_validator,
)
from openlam.loop.act import execute  # noqa: E402


@action("bench.echo", risk=Risk.read, idempotent=True)
async def echo(text: str, count: int = 1, tags: list[str] | None = None) -> dict[str, Any]:
    """Return the arguments (does nothing else).

    Args:
        text: Any text.
        count: A number.
        tags: Some labels.
    """
    return {"text": text, "count": count}


SCHEMA = {
    "type": "object",
    "properties": {
        "text": {"type": "string"},
        "count": {"type": "integer", "minimum": 0},
        "tags": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["text"],
    "additionalProperties": False,
}


async def _json_echo(ctx: ActionContext, **args: Any) -> dict[str, Any]:
    return {"text": args["text"], "count": args.get("count", 1)}


def registry() -> ActionRegistry:
    reg = load_plugins(ActionRegistry())  # the real registry, all installed plugins
    reg.add(echo.__openlam_action__)  # type: ignore[attr-defined]
    reg.add(
        ActionSpec(
            name="bench.json_echo",
            description="echo",
            input_schema=SCHEMA,
            output_schema={},
            risk=Risk.read,
            func=_json_echo,
            wants_context=True,
            source="bench",
            validator=json_schema_validator(SCHEMA),
        )
    )
    return reg


async def per_call_us(reg: ActionRegistry, name: str, via_execute: bool, calls: int) -> float:
    ctx = ActionContext(
        run_id="bench", step_id="s1", idempotency_key="bench:s1", workspace=Path(".")
    )
    args = {"text": "hello", "count": 3, "tags": ["a", "b"]}
    started = time.perf_counter()
    if via_execute:
        for _ in range(calls):
            spec = reg.get(name)
            assert spec is not None
            result = await execute(spec, ctx, args, timeout=30, retries=0)
            assert result.status == "succeeded", result
    else:
        for _ in range(calls):
            spec = reg.get(name)
            assert spec is not None
            await spec.call(ctx, args)
    return (time.perf_counter() - started) / calls * 1e6


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=7)
    opts = parser.parse_args()
    reg = registry()
    print(f"registry: {len(reg)} actions")
    cases = [("@action (pydantic)", "bench.echo"), ("JSON-schema spec", "bench.json_echo")]
    rows = []
    for label, name in cases:
        for via_execute in (False, True):
            await per_call_us(reg, name, via_execute, 500)  # warm up
            figures = [
                await per_call_us(reg, name, via_execute, opts.calls) for _ in range(opts.rounds)
            ]
            rows.append(
                (
                    label,
                    "execute()" if via_execute else "spec.call()",
                    statistics.median(figures),
                    min(figures),
                )
            )
    print("\n| action kind | path | median µs/call | best µs/call |")
    print("|---|---|---|---|")
    for label, path, median, best in rows:
        print(f"| {label} | {path} | {median:.1f} | {best:.1f} |")
    print(f"\nan agent's view (registry.subset, as each run perceives): {view_us(reg):.1f} µs")


def view_us(reg: ActionRegistry, calls: int = 2000) -> float:
    """One agent's view of the registry, over the catalog's agents in turn."""
    from openlam.org.loader import load_catalog

    agents = list(load_catalog())[:20]
    start = time.perf_counter()
    for i in range(calls):
        reg.subset(agents[i % len(agents)].actions)
    return (time.perf_counter() - start) / calls * 1e6


if __name__ == "__main__":
    asyncio.run(main())
