"""Core-loop benchmarks (issue 2): requests, tokens, CPU, concurrency, start-up time.

A fake OpenAI-compatible server runs in a separate process (so its CPU is not counted)
and answers every planning request with the same 4-action plan over files. Durable
checkpoints (DBOS on SQLite) are included in every figure.

The four actions are built-ins declared idempotent, which skip the in-flight checkpoint
a user's own (non-idempotent) action pays: this is a lower bound. ``bench_cost.py``
measures a user's own tools, side by side with a plain SDK loop (issue 11).

    python bench/bench_loop.py [--tasks 30] [--concurrent 50] [--latency 0.2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PLAN = {
    "steps": [
        {"id": "s1", "action": "files.write", "args": {"path": "a.md", "content": "alpha"}},
        {"id": "s2", "action": "files.write", "args": {"path": "b.md", "content": "beta"}},
        {"id": "s3", "action": "files.read", "args": {"path": "${s1.output.path}"}},
        {
            "id": "s4",
            "action": "files.write",
            "args": {"path": "c.md", "content": "${s3.output.text} and beta"},
            "depends_on": ["s2"],
        },
    ]
}
GOAL = (
    "write alpha to a.md and beta to b.md, then read a.md and combine its text with beta into c.md"
)


def serve(latency: float, port_queue: mp.Queue) -> None:
    from tests.fakes.model_servers import FakeOpenAI

    server = FakeOpenAI(lambda _body: PLAN, latency=latency)
    with server:
        port_queue.put(server.url)
        while True:
            time.sleep(3600)


def start_server(latency: float) -> tuple[mp.Process, str]:
    q: mp.Queue = mp.Queue()
    proc = mp.Process(target=serve, args=(latency, q), daemon=True)
    proc.start()
    return proc, q.get(timeout=20)


async def measure(url: str, tasks: int, concurrent: int) -> dict:
    import httpx

    from openlam import Workforce
    from openlam.config import load_settings

    ws = Path(tempfile.mkdtemp(prefix="bench-loop-"))
    settings = load_settings(ws).with_overrides(openai_base_url=f"{url}/v1")
    out: dict = {}
    async with Workforce(settings=settings, model="openai:fake") as wf:
        await wf.run(GOAL)  # warm-up: first imports, connections, caches
        cpu0, wall0 = time.process_time(), time.perf_counter()
        outcomes = [await wf.run(GOAL) for _ in range(tasks)]
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        assert all(o.status.value == "completed" for o in outcomes)
        out["requests_per_task"] = statistics.mean(o.usage.model_requests for o in outcomes)
        out["prompt_tokens_per_task"] = statistics.mean(o.usage.input_tokens for o in outcomes)
        out["cpu_ms_per_task"] = cpu / tasks * 1000
        out["wall_ms_per_task"] = wall / tasks * 1000
        if concurrent:
            wall0 = time.perf_counter()
            many = await asyncio.gather(*(wf.run(GOAL) for _ in range(concurrent)))
            out["concurrent_wall_s"] = time.perf_counter() - wall0
            out["concurrent_completed"] = sum(o.status.value == "completed" for o in many)
    async with httpx.AsyncClient() as client:  # what the server says it received
        out["server_check"] = (await client.get(f"{url}/v1/models")).status_code
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def child(url: str, tasks: int, concurrent: int) -> None:
    print(json.dumps(asyncio.run(measure(url, tasks, concurrent))))


def run_child(url: str, tasks: int, concurrent: int) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, "--child", url, str(tasks), str(concurrent)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def startup(cmd: list[str], runs: int = 7) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        child(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=30)
    parser.add_argument("--concurrent", type=int, default=50)
    parser.add_argument("--latency", type=float, default=0.2)
    a = parser.parse_args()

    fast, fast_url = start_server(0.0)
    seq = run_child(fast_url, a.tasks, 0)
    fast.terminate()
    slow, slow_url = start_server(a.latency)
    conc = run_child(slow_url, 2, a.concurrent)
    slow.terminate()
    openlam_bin = str(Path(sys.executable).with_name("openlam"))
    figures = {
        "model requests per 4-action task": seq["requests_per_task"],
        "prompt tokens sent per task": seq["prompt_tokens_per_task"],
        "CPU per task at zero model latency (ms), idempotent built-ins": round(
            seq["cpu_ms_per_task"], 1
        ),
        "wall per task at zero model latency (ms)": round(seq["wall_ms_per_task"], 1),
        f"{a.concurrent} concurrent tasks at {a.latency * 1000:.0f} ms latency, wall (s)": round(
            conc["concurrent_wall_s"], 2
        ),
        f"{a.concurrent} concurrent tasks completed": conc["concurrent_completed"],
        "peak RSS of that process (MB)": round(conc["peak_rss_mb"], 1),
        "import openlam, median (s)": round(startup([sys.executable, "-c", "import openlam"]), 3),
        "openlam --help, median (s)": round(startup([openlam_bin, "--help"]), 3),
        "python -c pass, median (s), for reference": round(
            startup([sys.executable, "-c", "pass"]), 3
        ),
    }
    for name, value in figures.items():
        print(f"{name:58s} {value}")


if __name__ == "__main__":
    main()
