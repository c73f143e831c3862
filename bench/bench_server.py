"""The HTTP server under load (issue 12): run listing latency while 200 clients follow
runs over server-sent events and 50 goals run.

A real ``openlam serve`` (its own queue worker, SQLite, the offline planner) in its own
process. Each goal saves a page from a local web server that answers after
``--step-seconds`` ("save the page at URL as FILE": a fetch and a file write), so the
50 runs overlap for a few seconds. A second process opens ``--watchers`` SSE streams
(``GET /api/v1/runs/{id}/events``, spread over the runs) as the goals are submitted,
and records when each stream ends; this process meanwhile times ``GET /api/v1/runs``
(the first page, 50 runs) one request after another. The same listing is then timed
on the idle server (the 50 runs stored, nothing running) for comparison.

    python bench/bench_server.py [--goals 50] [--watchers 200] [--step-seconds 3]
                                 [--separate-worker]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LISTING = "/api/v1/runs?limit=50"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def slow_site(seconds: float):
    from tests.fakes.http import FakeHTTPServer

    def handle(_method: str, _path: str, _headers: dict, _body: bytes):
        time.sleep(seconds)
        return 200, {"Content-Type": "text/html"}, b"<html><body><p>slow page</p></body></html>"

    server = FakeHTTPServer(handle)
    server.__enter__()
    return server


def start_server(workspace: Path, port: int, worker: bool) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "openlam",
            "serve",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--workspace",
            str(workspace),
            *([] if worker else ["--no-worker"]),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def start_worker(workspace: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "openlam", "worker", "--workspace", str(workspace)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def wait_healthy(base: str) -> None:
    import httpx

    async with httpx.AsyncClient(base_url=base) as client:
        for _ in range(600):
            try:
                if (await client.get("/api/v1/health")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise SystemExit("the server did not start")


async def probe(client, stop: asyncio.Event) -> list[float]:
    """``GET /api/v1/runs`` one after another until ``stop``; each latency in ms."""
    latencies = []
    while not stop.is_set():
        started = time.perf_counter()
        reply = await client.get(LISTING)
        latencies.append((time.perf_counter() - started) * 1000)
        assert reply.status_code == 200, reply.text
        await asyncio.sleep(0.01)
    return latencies


# -- the watchers' process --------------------------------------------------------------


async def watch(base: str, token: str, run_ids: list[str], watchers: int) -> dict:
    import httpx

    limits = httpx.Limits(max_connections=watchers + 10, max_keepalive_connections=watchers)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(
        base_url=base, headers=headers, limits=limits, timeout=httpx.Timeout(300, connect=60)
    ) as client:

        async def one(run_id: str) -> dict:
            events, finished_at, error = 0, None, None
            try:
                async with client.stream("GET", f"/api/v1/runs/{run_id}/events") as reply:
                    async for line in reply.aiter_lines():
                        if line.startswith("data:"):
                            events += 1
                            if json.loads(line[5:]).get("kind") == "run.finished":
                                finished_at = time.time()
            except Exception as exc:  # reported, not hidden
                error = f"{type(exc).__name__}: {exc}"
            return {"run_id": run_id, "events": events, "finished_at": finished_at, "error": error}

        results = await asyncio.gather(*(one(run_ids[i % len(run_ids)]) for i in range(watchers)))
    return {"streams": results}


# -- the whole benchmark ----------------------------------------------------------------


async def bench(goals: int, watchers: int, step_seconds: float, separate: bool) -> None:
    import httpx

    from openlam.config import load_settings
    from openlam.memory.store import Store
    from openlam.server.credentials import Credentials

    site = slow_site(step_seconds)
    workspace = Path(tempfile.mkdtemp(prefix="openlam-bench-server-")) / "ws"
    workspace.mkdir()
    (workspace / "openlam.toml").write_text(
        f'[queues]\nworker_concurrency = {goals}\n[network]\nallow_networks = ["127.0.0.0/8"]\n',
        encoding="utf-8",
    )
    settings = load_settings(workspace)
    _info, token = Credentials(Store(settings.app_database_url).engine).create_token(
        "bench", "operator"
    )
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_server(workspace, port, worker=not separate)
    worker = start_worker(workspace) if separate else None
    try:
        await wait_healthy(base)
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as client:
            for _ in range(20):  # warm up: first requests import and cache
                await client.get(LISTING)
            started = time.time()
            run_ids = []
            for i in range(goals):
                reply = await client.post(
                    "/api/v1/goals",
                    json={
                        "goal": f"save the page at {site.url}/slow?job={i} as out/{i}.md",
                        "model": "offline",
                    },
                )
                assert reply.status_code == 202, reply.text
                run_ids.append(reply.json()["run_id"])
            submitted = time.time() - started
            watcher_proc = await asyncio.create_subprocess_exec(
                sys.executable,
                __file__,
                "--watch",
                base,
                token,
                str(watchers),
                *run_ids,
                stdout=asyncio.subprocess.PIPE,
            )
            stop = asyncio.Event()
            probing = asyncio.create_task(probe(client, stop))
            out, _ = await watcher_proc.communicate()
            stop.set()
            under_load = await probing
            total = time.time() - started
            streams = json.loads(out)["streams"]
            runs = {r["id"]: r for r in (await client.get("/api/v1/runs?limit=500")).json()["runs"]}
            stop = asyncio.Event()
            idle_task = asyncio.create_task(probe(client, stop))
            await asyncio.sleep(5)
            stop.set()
            idle = await idle_task
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(timeout=60)
        server.terminate()
        _out, err = server.communicate(timeout=60)
        site.__exit__(None, None, None)
    statuses = {
        s: sum(1 for r in runs.values() if r["status"] == s)
        for s in {r["status"] for r in runs.values()}
    }
    ended = [s for s in streams if s["finished_at"] is not None]
    lags = [
        (s["finished_at"] - runs[s["run_id"]]["updated_at"]) * 1000
        for s in ended
        if s["run_id"] in runs
    ]
    errors = [s["error"] for s in streams if s["error"]]
    print(
        f"machine: {os.cpu_count()} CPUs; {goals} goals (each a {step_seconds:g} s fetch "
        f"and a file write), {watchers} SSE watchers; runs executed by "
        + ("a separate `openlam worker`" if separate else "the server's own worker")
    )
    print(
        f"submitted {goals} goals in {submitted:.2f} s; all runs and streams ended after "
        f"{total:.1f} s; runs: {statuses}"
    )
    print(
        f"SSE streams ending with run.finished: {len(ended)}/{watchers}; events per stream "
        f"median {statistics.median(s['events'] for s in streams):g}; errors: "
        f"{len(errors)} {errors[:2]}"
    )
    if lags:
        print(
            f"run.finished seen after the run was stored: median {statistics.median(lags):.0f}"
            f" ms, p95 {percentile(lags, 95):.0f} ms"
        )
    for name, values in (("under load", under_load), ("idle", idle)):
        print(
            f"GET {LISTING} {name}: n={len(values)} p50 {percentile(values, 50):.1f} ms, "
            f"p95 {percentile(values, 95):.1f} ms, max {max(values):.1f} ms"
        )
    if b"Traceback" in err:
        print("server log had a traceback:\n" + err.decode(errors="replace")[-3000:])


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--watch":
        base, token, watchers, *run_ids = sys.argv[2:]
        print(json.dumps(asyncio.run(watch(base, token, run_ids, int(watchers)))))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--goals", type=int, default=50)
    parser.add_argument("--watchers", type=int, default=200)
    parser.add_argument("--step-seconds", type=float, default=3.0)
    parser.add_argument(
        "--separate-worker",
        action="store_true",
        help="serve with --no-worker; one `openlam worker` runs the goals",
    )
    args = parser.parse_args()
    asyncio.run(bench(args.goals, args.watchers, args.step_seconds, args.separate_worker))


if __name__ == "__main__":
    main()
