"""Fan-out benchmark (issue 4): one parent delegates to 100 children at once.

A fake OpenAI-compatible server (separate process) answers with 200 ms latency: the
parent's plan is 100 `delegate` steps to 100 different agents of the catalog; each
child's plan is one `files.write`. Every run is durable (DBOS on SQLite).

The latency-bound ideal is three model round trips in sequence — the parent's plan, the
children's plans (all at once), nothing else — so 0.6 s at 200 ms.

``--rounds N`` runs the fan-out N times in the same process: the first includes what a
process does once (importing the HTTP client, building the model client and the
actions' schemas, reading the catalog); the others are what a long-running worker or
server pays for each fan-out. Repeat rounds with ``--no-learn`` (runs with
``learn=False``): with learning on, as users get it by default, a repeated goal is
replayed from the playbooks the first round taught, with no model request at all (that
is learning's own gain, measured in its own section).

    python bench/bench_fanout.py [--children 100] [--latency 0.2] [--rounds 3 --no-learn]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PARENT = "chief_operating_officer"


def plan_for(body: dict, children: list[str]) -> dict:
    system = body["messages"][0]["content"]
    if system.startswith("You are Kenji Watanabe"):  # the parent (the COO)
        if "So far:" in body["messages"][-1]["content"]:
            return {"steps": []}
        return {
            "steps": [
                {
                    "id": f"d{i}",
                    "action": "delegate",
                    "args": {"agent": agent, "goal": f"write status note {i}"},
                }
                for i, agent in enumerate(children)
            ]
        }
    n = body["messages"][-1]["content"].split("status note ")[-1].split()[0]
    return {
        "steps": [
            {
                "id": "s1",
                "action": "files.write",
                "args": {"path": f"notes/{n}.md", "content": f"status {n}: fine"},
            }
        ]
    }


def serve(latency: float, children: list[str], q: mp.Queue) -> None:
    from tests.fakes.model_servers import FakeOpenAI

    with FakeOpenAI(lambda body: plan_for(body, children), latency=latency) as server:
        q.put(server.url)
        while True:
            time.sleep(3600)


async def measure(url: str, n: int, rounds: int, learn: bool) -> list[dict]:
    from openlam import Workforce
    from openlam.config import load_settings

    ws = Path(tempfile.mkdtemp(prefix="bench-fanout-"))
    # The COO's catalog budget (30 steps a run) is below a 100-way fan-out: raised here,
    # through a workspace override as a user would.
    (ws / "agents").mkdir()
    (ws / "agents" / "bench.yaml").write_text(
        f"agents:\n  - id: {PARENT}\n    budget: {{max_steps: {n + 5}, max_model_requests: 12}}\n"
    )
    settings = load_settings(ws).with_overrides(
        openai_base_url=f"{url}/v1", max_delegations=n, max_steps=n + 5
    )
    results = []
    async with Workforce(settings=settings, model="openai:fake") as wf:
        for _ in range(rounds):
            notes_dir = ws / "notes"
            for old in notes_dir.glob("*.md") if notes_dir.exists() else []:
                old.unlink()
            cpu0, t0 = time.process_time(), time.perf_counter()
            outcome = await wf.run("collect a status note from everyone", agent=PARENT, learn=learn)
            wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
            if outcome.status.value != "completed":
                print(outcome.summary[:600], file=sys.stderr)
            results.append(
                {
                    "status": outcome.status.value,
                    "children": len(outcome.children),
                    "notes_written": len(list(notes_dir.glob("*.md"))),
                    "wall_s": wall,
                    "cpu_s": cpu,
                    "model_requests": outcome.usage.model_requests,
                    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                }
            )
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--children", type=int, default=100)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--no-learn", action="store_true", help="runs with learn=False")
    a = parser.parse_args()
    if a.rounds > 1 and not a.no_learn:
        print("note: with learning on, rounds after the first replay learned playbooks")

    import fnmatch

    from openlam.org.loader import load_catalog

    writers = [
        x.id
        for x in load_catalog()
        if x.id != PARENT and any(fnmatch.fnmatchcase("files.write", p) for p in x.actions)
    ]  # the children's task
    agents = writers[: a.children]
    if len(agents) < a.children:
        print(f"only {len(agents)} agents may write files; delegating to each of them")
    q: mp.Queue = mp.Queue()
    server = mp.Process(target=serve, args=(a.latency, agents, q), daemon=True)
    server.start()
    url = q.get(timeout=30)
    try:
        results = asyncio.run(measure(url, len(agents), a.rounds, not a.no_learn))
    finally:
        server.terminate()
    ideal = 3 * a.latency
    for i, result in enumerate(results):
        print(json.dumps(result))
        label = "first in the process" if i == 0 else f"round {i + 1}, same process"
        print(
            f"{label:22s} wall {result['wall_s']:.2f} s (ideal {ideal:.2f} s, "
            f"{result['wall_s'] / ideal:.1f}x); CPU {result['cpu_s']:.2f} s "
            f"({result['cpu_s'] / max(result['children'], 1) * 1000:.0f} ms per child); "
            f"{result['children']} children, {result['notes_written']} notes written, "
            f"{result['model_requests']} model requests, "
            f"parent {result['status']}; peak RSS {result['peak_rss_mb']:.0f} MB"
        )


if __name__ == "__main__":
    main()
