"""MCP call round trip through OpenLAM vs the raw ``mcp`` client (issue 3).

Both talk to their own ``mcp-server-time`` process over stdio and call
``get_current_time``. OpenLAM's path is the registered action: registry lookup, JSON
schema validation, the per-loop session pool and the conversion of the result — through
``spec.call`` and through the act phase's ``execute`` (timeout, retry bookkeeping).
Batches alternate between the two clients so that load from other processes on the
machine hits both alike; the figure is the ratio of the medians. Target: ≤ 1.2.

    python bench/bench_mcp.py [--calls 200] [--rounds 9]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ARGS = {"timezone": "Europe/Paris"}


async def main() -> None:
    from mcp import Client, StdioServerParameters

    from openlam.actions import mcp
    from openlam.actions.registry import ActionRegistry
    from openlam.actions.spec import ActionContext
    from openlam.config import load_settings
    from openlam.loop.act import execute

    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=9)
    opts = parser.parse_args()

    workspace = Path(tempfile.mkdtemp(prefix="openlam-bench-mcp-"))
    settings = load_settings(workspace)
    mcp.save_server(
        settings, mcp.ServerConfig(name="time", transport="stdio", command="mcp-server-time")
    )
    started = time.perf_counter()
    await mcp.refresh(settings, "time")
    await mcp.aclose_all()
    refresh_s = time.perf_counter() - started
    registry = ActionRegistry()
    mcp.register(registry, settings)
    ctx = ActionContext(
        run_id="bench", step_id="s1", idempotency_key="bench:s1", workspace=workspace
    )

    async def openlam_call() -> None:
        spec = registry.get("time.get_current_time")
        assert spec is not None
        out = await spec.call(ctx, ARGS)
        assert out["timezone"] == "Europe/Paris"

    async def openlam_execute() -> None:
        spec = registry.get("time.get_current_time")
        assert spec is not None
        result = await execute(spec, ctx, ARGS, timeout=30, retries=0)
        assert result["status"] == "succeeded"

    started = time.perf_counter()
    await openlam_call()  # the lazy start
    first_call_s = time.perf_counter() - started

    errlog = open(workspace / "raw-server.log", "w")  # noqa: SIM115 (open for the whole run)
    params = StdioServerParameters(command="mcp-server-time")
    from mcp.client.stdio import stdio_client

    async with Client(stdio_client(params, errlog=errlog)) as raw:

        async def raw_call() -> None:
            result = await raw.call_tool("get_current_time", ARGS)
            assert not result.is_error

        async def batch(fn: Callable[[], Awaitable[None]]) -> float:
            t0 = time.perf_counter()
            for _ in range(opts.calls):
                await fn()
            return (time.perf_counter() - t0) / opts.calls * 1e6

        for fn in (raw_call, openlam_call, openlam_execute):  # warm up
            await batch(fn)
        raw_us, call_us, exec_us = [], [], []
        for _ in range(opts.rounds):
            raw_us.append(await batch(raw_call))
            call_us.append(await batch(openlam_call))
            exec_us.append(await batch(openlam_execute))
    await mcp.aclose_all()
    errlog.close()

    raw_m, call_m, exec_m = (statistics.median(x) for x in (raw_us, call_us, exec_us))
    print(
        f"mcp add/refresh (start, list tools, stop): {refresh_s * 1000:.0f} ms; "
        f"first call incl. lazy start: {first_call_s * 1000:.0f} ms"
    )
    print(f"{opts.rounds} rounds x {opts.calls} calls each, medians per call:")
    print("\n| path | µs/call (median of rounds) | ratio to raw |")
    print("|---|---|---|")
    print(f"| raw `mcp` Client.call_tool | {raw_m:.0f} | 1.00 |")
    print(f"| OpenLAM action, spec.call() | {call_m:.0f} | {call_m / raw_m:.2f} |")
    print(f"| OpenLAM action, execute() (act phase) | {exec_m:.0f} | {exec_m / raw_m:.2f} |")
    ratios = [c / r for c, r in zip(call_us, raw_us, strict=True)]
    print(
        f"\nper-round ratio spec.call/raw: min {min(ratios):.2f}, "
        f"median {statistics.median(ratios):.2f}, max {max(ratios):.2f}"
    )


if __name__ == "__main__":
    asyncio.run(main())
