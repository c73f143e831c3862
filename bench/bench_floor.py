"""What a durable run costs before OpenLAM adds anything (issue 11): the floor.

Measured in one process on a fresh SQLite workspace, as the cost bench's runs are:

* a DBOS workflow that does nothing (start, record its input, record its output);
* the same workflow with ``--steps`` DBOS steps (DBOS's own per-step checkpoint, which
  OpenLAM replaces with its journal: ``runtime/journal.py``);
* one transaction that inserts one row, vs the same insert inside a shared transaction
  (what a commit itself costs on SQLite in WAL mode with synchronous=NORMAL);
* one HTTP POST to the cost bench's fake model server with httpx, the client
  ``models/direct.py`` uses.

    python bench/bench_floor.py [--n 300] [--steps 10]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def cpu_ms(start: float, n: int) -> float:
    return (time.process_time() - start) / n * 1000


async def dbos_floor(n: int, steps: int) -> dict[str, float]:
    from dbos import DBOS

    folder = tempfile.mkdtemp(prefix="bench-floor-")
    DBOS(
        config={
            "name": "bench-floor",
            "system_database_url": f"sqlite:///{folder}/dbos.sqlite",
            "log_level": "WARNING",
            "executor_id": "floor",
            "application_version": "1",
        }
    )

    @DBOS.step()
    async def step(i: int) -> int:
        return i

    @DBOS.workflow()
    async def empty(x: dict[str, Any]) -> dict[str, Any]:
        return x

    @DBOS.workflow()
    async def stepped(x: dict[str, Any]) -> dict[str, Any]:
        for i in range(steps):
            await step(i)
        return x

    DBOS.launch()
    out = {}
    try:
        for name, workflow in (("empty", empty), ("stepped", stepped)):
            for _ in range(20):  # warm-up
                await (await DBOS.start_workflow_async(workflow, {"a": 1})).get_result()
            start = time.process_time()
            for _ in range(n):
                await (await DBOS.start_workflow_async(workflow, {"a": 1})).get_result()
            out[name] = cpu_ms(start, n)
    finally:
        DBOS.destroy()
    return out


def commit_floor(n: int) -> tuple[float, float]:
    import sqlalchemy as sa

    from openlam.memory.engines import engine_for
    from openlam.memory.prepared import Prepared

    engine = engine_for(f"sqlite:///{tempfile.mkdtemp(prefix='bench-floor-')}/x.db")
    meta = sa.MetaData()
    table = sa.Table(
        "t", meta, sa.Column("id", sa.Integer, primary_key=True), sa.Column("v", sa.Text)
    )
    meta.create_all(engine)
    insert = Prepared(engine, sa.insert(table))
    start = time.process_time()
    for i in range(n):
        with engine.begin() as conn:
            insert.execute(conn, {"id": i, "v": "x"})
    own = cpu_ms(start, n)
    start = time.process_time()
    with engine.begin() as conn:
        for i in range(n, 2 * n):
            insert.execute(conn, {"id": i, "v": "x"})
    return own, cpu_ms(start, n)


async def http_floor(n: int) -> float:
    import httpx

    import bench_cost

    proc, url = bench_cost.start_server(0.0)
    body = {"model": "fake", "messages": [{"role": "user", "content": bench_cost.GOAL}]}
    try:
        async with httpx.AsyncClient(base_url=f"{url}/v1") as client:
            for _ in range(20):
                (await client.post("/chat/completions", json=body)).json()
            start = time.process_time()
            for _ in range(n):
                (await client.post("/chat/completions", json=body)).json()
            return cpu_ms(start, n)
    finally:
        proc.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    dbos = asyncio.run(dbos_floor(args.n, args.steps))
    own, shared = commit_floor(args.n * 10)
    http = asyncio.run(http_floor(args.n))
    print(f"DBOS workflow, nothing in it:        {dbos['empty']:.2f} ms CPU")
    print(
        f"DBOS workflow with {args.steps} DBOS steps:     {dbos['stepped']:.2f} ms CPU "
        f"({(dbos['stepped'] - dbos['empty']) / max(args.steps, 1):.2f} ms a step)"
    )
    print(
        f"SQLite insert in its own transaction: {own * 1000:.0f} µs CPU; in a shared one "
        f"{shared * 1000:.0f} µs (a commit ≈ {(own - shared) * 1000:.0f} µs)"
    )
    print(f"httpx POST to the fake model server: {http:.2f} ms CPU")


if __name__ == "__main__":
    main()
