"""Growth (issue 11): does a run cost more as a workspace fills up?

One workspace; the 4-tool support task of ``bench_cost.py`` (fake OpenAI-compatible
server at zero latency, separate process) is run in batches, 10 at a time concurrently,
until ``--runs`` runs are stored. CPU per task is measured for the 10 runs at each
checkpoint (after 10, 100, 1,000, … runs). Then, on the full workspace, the commands a
user runs are timed as new processes: ``openlam runs list``, ``openlam audit verify``
and an offline ``openlam run``, whose start scans for runs of dead executors to
recover (none are pending here: this times the scan over a full workspace, not the
replay of a run).

    python bench/bench_growth.py [--runs 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import bench_cost  # noqa: E402  (the task, the server and the plugin)


async def fill(url: str, ws: Path, total: int) -> list[dict[str, Any]]:
    from openlam import Workforce
    from openlam.config import load_settings

    settings = load_settings(ws).with_overrides(openai_base_url=f"{url}/v1")
    marks = sorted({m for m in (10, 100, 1000, 2000, 5000, 10000, total) if m <= total})
    rows = []
    async with Workforce(settings=settings, model="openai:fake") as wf:
        wf.runtime.registry.add_module(bench_cost.support_plugin(), source="bench")

        async def one() -> None:
            outcome = await wf.run(bench_cost.GOAL)
            if outcome.status.value != "completed":
                raise RuntimeError(outcome.summary)

        await one()  # warm-up: first imports and connections are not growth
        done = 1
        for mark in marks:
            while done < mark - 10:  # fill in batches of 10 concurrent runs
                n = min(10, mark - 10 - done)
                await asyncio.gather(*(one() for _ in range(n)))
                done += n
            cpu0 = time.process_time()
            for _ in range(10):  # the measured runs, one at a time
                await one()
            done += 10
            rows.append(
                {"runs_stored": done, "cpu_ms_per_task": (time.process_time() - cpu0) / 10 * 1000}
            )
            print(json.dumps(rows[-1]), flush=True)
    return rows


def timed(args: list[str], ws: Path, env: dict[str, str]) -> float:
    t = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "openlam", *args, "--workspace", str(ws)],
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode not in (0, 4):
        raise SystemExit(f"openlam {' '.join(args)}: {done.stderr[-1500:]}")
    return time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=2000)
    a = parser.parse_args()
    ws = Path(tempfile.mkdtemp(prefix="bench-growth-"))
    server, url = bench_cost.start_server(0.0)
    try:
        t = time.perf_counter()
        rows = asyncio.run(fill(url, ws, a.runs))
        fill_s = time.perf_counter() - t
    finally:
        server.terminate()
    env = dict(os.environ)
    figures = {
        "runs stored": rows[-1]["runs_stored"],
        "filling took (s)": round(fill_s, 1),
        "openlam runs list (s)": round(timed(["runs", "list"], ws, env), 2),
        "openlam audit verify (s)": round(timed(["audit", "verify"], ws, env), 2),
        "openlam run (offline goal) on the full workspace (s)": round(
            timed(["run", "write 'growth' to growth.md", "--model", "offline"], ws, env), 2
        ),
    }
    for row in rows:
        print(f"CPU ms/task after {row['runs_stored']:>6} runs: {row['cpu_ms_per_task']:.1f}")
    for name, value in figures.items():
        print(f"{name:55s} {value}")


if __name__ == "__main__":
    main()
