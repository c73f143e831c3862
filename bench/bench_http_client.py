"""CPU of the model client's HTTP library: httpx (what OpenLAM uses) next to aiohttp
(when installed), on the request a run makes (issue 11, "an HTTP client tried").

A fake OpenAI-compatible server in another process (its CPU not counted) answers the same
JSON body; this process's CPU is measured for requests one at a time, and for rounds of
``--concurrent`` requests at once at ``--latency`` seconds (the shape of a fan-out).

    python bench/bench_http_client.py [--requests 300] [--concurrent 100] [--latency 0.2]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import multiprocessing as mp
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

BODY = {"model": "fake", "messages": [{"role": "user", "content": "hello " * 200}]}
PATH = "/v1/chat/completions"


def serve(latency: float, q: mp.Queue) -> None:
    from tests.fakes.model_servers import FakeOpenAI

    with FakeOpenAI(lambda body: {"steps": []}, latency=latency) as server:
        q.put(server.url)
        while True:
            time.sleep(3600)


def start(latency: float) -> tuple[mp.Process, str]:
    q: mp.Queue = mp.Queue()
    process = mp.Process(target=serve, args=(latency, q), daemon=True)
    process.start()
    return process, q.get(timeout=30)


async def with_httpx(url: str, sequential: int, concurrent: int, rounds: int) -> dict[str, Any]:
    import httpx

    async with httpx.AsyncClient(base_url=url) as client:

        async def one() -> None:
            (await client.post(PATH, json=BODY)).json()

        return await measure(one, sequential, concurrent, rounds)


async def with_aiohttp(url: str, sequential: int, concurrent: int, rounds: int) -> dict[str, Any]:
    import aiohttp

    async with aiohttp.ClientSession(base_url=url) as session:

        async def one() -> None:
            async with session.post(PATH, json=BODY) as response:
                await response.json()

        return await measure(one, sequential, concurrent, rounds)


async def measure(one: Any, sequential: int, concurrent: int, rounds: int) -> dict[str, Any]:
    await one()  # connect first
    out: dict[str, Any] = {}
    if sequential:
        cpu = time.process_time()
        for _ in range(sequential):
            await one()
        out["ms_per_request"] = (time.process_time() - cpu) / sequential * 1000
    if concurrent:
        out["ms_per_round"] = []
        for _ in range(rounds):
            cpu = time.process_time()
            await asyncio.gather(*(one() for _ in range(concurrent)))
            out["ms_per_round"].append((time.process_time() - cpu) * 1000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--concurrent", type=int, default=100)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--rounds", type=int, default=4)
    a = parser.parse_args()
    sides = {"httpx": with_httpx}
    if importlib.util.find_spec("aiohttp"):
        sides["aiohttp"] = with_aiohttp
    else:
        print("aiohttp is not installed: measuring httpx only")
    quick, quick_url = start(0.0)
    slow, slow_url = start(a.latency)
    try:
        for _ in range(2):  # alternate, so load from other processes hits both
            for name, side in sides.items():
                seq = asyncio.run(side(quick_url, a.requests, 0, 0))
                par = asyncio.run(side(slow_url, 0, a.concurrent, a.rounds))
                rounds = ", ".join(f"{ms:.0f}" for ms in par["ms_per_round"])
                print(
                    f"{name:8s} one at a time {seq['ms_per_request']:.2f} ms / request; "
                    f"{a.concurrent} at once: {rounds} ms / round"
                )
    finally:
        quick.terminate()
        slow.terminate()


if __name__ == "__main__":
    main()
