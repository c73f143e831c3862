"""Cost per run (issue 11): a plain ``openai`` SDK tool loop vs OpenLAM, side by side.

One fake OpenAI-compatible server (a separate process: its CPU is not counted) serves
both. The task is the same 4-tool customer-support case for both sides, with the same
four pure-Python tools:

1. ``lookup_customer(email)``      read
2. ``get_order(order_id)``         read
3. ``open_ticket(customer_id, order_id, issue)``   write
4. ``add_ticket_note(ticket_id, text)``            write

The plain loop is what a user writes with the SDK alone: send the messages and the tool
schemas, run the tool the model calls, append its result, ask again — 4 tool calls and
a final answer, 5 requests. OpenLAM runs the same tools as registered actions, as a user
gets it by default: a durable DBOS workflow (every model call and action checkpointed),
governance on (policy decision, hash-chained audit, usage counters) and the project
database (runs, steps, experience). The model plans the four steps once.

Every measurement runs in a fresh process (so peak RSS is that workload's alone):

* CPU ms per task, ``--tasks`` tasks in sequence at zero model latency (after 1 warm-up);
* ``--concurrent`` tasks at once with ``--latency`` seconds per model reply: wall, peak RSS;
* model requests and prompt tokens per task (tokens as the server counts them:
  characters ÷ 4 of everything the request carries);
* OpenLAM opens a workspace an earlier process made (as every process but a workspace's
  very first does); ``--fresh-workspace`` makes it create the databases (and import
  alembic to migrate them) in the measured process;
* import time of everything a run loads (the modules present after one task, imported
  in a fresh interpreter; median of 5).

    python bench/bench_cost.py [--tasks 50] [--concurrent 50] [--latency 0.2] [--rounds 3]
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
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GOAL = (
    "Customer jane@example.com says order A1001 arrived damaged. Look up the customer "
    "and the order, open a replacement ticket for it, and note on the ticket that a "
    "replacement ships today."
)


# -- the four tools, shared by both sides -------------------------------------------


def lookup_customer(email: str) -> dict[str, Any]:
    return {"customer_id": "C42", "name": "Jane Doe", "email": email, "tier": "gold"}


def get_order(order_id: str) -> dict[str, Any]:
    return {
        "order_id": order_id,
        "status": "delivered",
        "total": 129.0,
        "items": [{"sku": "LAMP-7", "qty": 1}],
    }


TICKETS: dict[str, dict[str, Any]] = {}


def open_ticket(customer_id: str, order_id: str, issue: str) -> dict[str, Any]:
    ticket_id = f"T{len(TICKETS) + 1}"
    TICKETS[ticket_id] = {
        "customer_id": customer_id,
        "order_id": order_id,
        "issue": issue,
        "notes": [],
    }
    return {"ticket_id": ticket_id, "status": "open"}


def add_ticket_note(ticket_id: str, text: str) -> dict[str, Any]:
    TICKETS[ticket_id]["notes"].append(text)
    return {"ticket_id": ticket_id, "notes": len(TICKETS[ticket_id]["notes"])}


TOOLS = {f.__name__: f for f in (lookup_customer, get_order, open_ticket, add_ticket_note)}
TOOL_SCHEMAS = [
    {
        "type": "function",
        "function": {
            "name": name,
            "description": (f.__doc__ or name.replace("_", " ")),
            "parameters": {
                "type": "object",
                "required": list(params),
                "properties": {p: {"type": "string"} for p in params},
            },
        },
    }
    for name, f, params in [
        ("lookup_customer", lookup_customer, ["email"]),
        ("get_order", get_order, ["order_id"]),
        ("open_ticket", open_ticket, ["customer_id", "order_id", "issue"]),
        ("add_ticket_note", add_ticket_note, ["ticket_id", "text"]),
    ]
]

# What the model "decides", per side.
SDK_CALLS = [
    ("lookup_customer", {"email": "jane@example.com"}),
    ("get_order", {"order_id": "A1001"}),
    (
        "open_ticket",
        {"customer_id": "C42", "order_id": "A1001", "issue": "arrived damaged: send a replacement"},
    ),
    ("add_ticket_note", {"ticket_id": "T1", "text": "replacement ships today"}),
]
PLAN = {
    "steps": [
        {"id": "s1", "action": "support.lookup_customer", "args": {"email": "jane@example.com"}},
        {"id": "s2", "action": "support.get_order", "args": {"order_id": "A1001"}},
        {
            "id": "s3",
            "action": "support.open_ticket",
            "args": {
                "customer_id": "${s1.output.customer_id}",
                "order_id": "${s2.output.order_id}",
                "issue": "arrived damaged: send a replacement",
            },
        },
        {
            "id": "s4",
            "action": "support.add_ticket_note",
            "args": {"ticket_id": "${s3.output.ticket_id}", "text": "replacement ships today"},
        },
    ]
}


def reply_for(body: dict[str, Any]) -> Any:
    if body.get("tools"):  # the SDK loop: the next tool, or the final answer
        done = sum(1 for m in body["messages"] if m.get("role") == "tool")
        if done < len(SDK_CALLS):
            name, args = SDK_CALLS[done]
            return {"tool_call": {"name": name, "arguments": args}}
        return "Ticket opened and noted; a replacement ships today."
    return PLAN  # OpenLAM's planner


# -- the server ----------------------------------------------------------------------


def serve(latency: float, q: mp.Queue) -> None:
    from tests.fakes.model_servers import FakeOpenAI

    class Counting(FakeOpenAI):
        def _handle(self, method, path, headers, raw):  # type: ignore[no-untyped-def]
            if path == "/stats":
                from tests.fakes.http import json_response

                return json_response(
                    {"requests": self.chat_requests, "prompt_tokens": self.prompt_tokens}
                )
            return super()._handle(method, path, headers, raw)

    with Counting(reply_for, latency=latency) as server:
        q.put(server.url)
        while True:
            time.sleep(3600)


def start_server(latency: float) -> tuple[mp.Process, str]:
    q: mp.Queue = mp.Queue()
    proc = mp.Process(target=serve, args=(latency, q), daemon=True)
    proc.start()
    return proc, q.get(timeout=20)


def server_stats(url: str) -> dict[str, int]:
    import urllib.request

    with urllib.request.urlopen(f"{url}/stats") as r:
        return json.loads(r.read())


# -- side 1: the plain SDK loop ------------------------------------------------------


async def sdk_task(client: Any) -> str:
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "You are a customer-support agent. Use the tools."},
        {"role": "user", "content": GOAL},
    ]
    for _ in range(10):
        resp = await client.chat.completions.create(
            model="fake", messages=messages, tools=TOOL_SCHEMAS
        )
        msg = resp.choices[0].message
        if not msg.tool_calls:
            return msg.content or ""
        messages.append(msg.model_dump(exclude_none=True))
        for call in msg.tool_calls:
            result = TOOLS[call.function.name](**json.loads(call.function.arguments))
            messages.append(
                {"role": "tool", "tool_call_id": call.id, "content": json.dumps(result)}
            )
    raise RuntimeError("the model never finished")


async def sdk_side(url: str, tasks: int, concurrent: int) -> dict[str, Any]:
    from openai import AsyncOpenAI

    client = AsyncOpenAI(base_url=f"{url}/v1", api_key="test-key", max_retries=0)
    await sdk_task(client)  # warm-up
    return await _timed(url, lambda: sdk_task(client), tasks, concurrent)


# -- side 2: OpenLAM, defaults (durable + governed) ----------------------------------


def support_plugin() -> Any:
    """The same four tools as OpenLAM actions, through the ordinary plugin surface."""
    import types

    from openlam.actions.spec import Risk, action

    module = types.ModuleType("bench_support")
    for name, risk in (
        ("lookup_customer", Risk.read),
        ("get_order", Risk.read),
        ("open_ticket", Risk.write),
        ("add_ticket_note", Risk.write),
    ):
        setattr(module, name, action(f"support.{name}", risk=risk)(TOOLS[name]))
    return module


async def openlam_side(url: str, tasks: int, concurrent: int, ws: str = "") -> dict[str, Any]:
    from openlam import Workforce
    from openlam.config import load_settings

    ws = ws or tempfile.mkdtemp(prefix="bench-cost-")  # fresh: its first open migrates it
    settings = load_settings(ws).with_overrides(openai_base_url=f"{url}/v1")
    async with Workforce(settings=settings, model="openai:fake") as wf:
        wf.runtime.registry.add_module(support_plugin(), source="bench")
        outcomes: list[Any] = []

        async def task() -> None:
            outcome = await wf.run(GOAL)  # the general operator, every action
            if outcome.status.value != "completed":
                raise RuntimeError(
                    f"run {outcome.run_id} ended {outcome.status.value}: {outcome.summary}"
                )
            outcomes.append(outcome)

        await task()  # warm-up
        outcomes.clear()
        out = await _timed(url, task, tasks, concurrent)
        if outcomes and getattr(outcomes[0].usage, "overhead_cpu_seconds", None) is not None:
            out["reported_overhead_cpu_ms"] = (
                statistics.mean(o.usage.overhead_cpu_seconds for o in outcomes) * 1000
            )
    return out


# -- measuring -----------------------------------------------------------------------


async def _timed(url: str, task: Any, tasks: int, concurrent: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    before = server_stats(url)
    if tasks:
        cpu0, wall0 = time.process_time(), time.perf_counter()
        for _ in range(tasks):
            await task()
        out["cpu_ms_per_task"] = (time.process_time() - cpu0) / tasks * 1000
        out["wall_ms_per_task"] = (time.perf_counter() - wall0) / tasks * 1000
        after = server_stats(url)
        out["requests_per_task"] = (after["requests"] - before["requests"]) / tasks
        out["prompt_tokens_per_task"] = (after["prompt_tokens"] - before["prompt_tokens"]) / tasks
    if concurrent:
        wall0 = time.perf_counter()
        await asyncio.gather(*(task() for _ in range(concurrent)))
        out["concurrent_wall_s"] = time.perf_counter() - wall0
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["modules"] = sorted({m.split(".")[0] for m in sys.modules if not m.startswith("_")})
    return out


def child(side: str, url: str, tasks: int, concurrent: int, ws: str) -> None:
    if side == "sdk":
        print(json.dumps(asyncio.run(sdk_side(url, tasks, concurrent))))
    else:
        print(json.dumps(asyncio.run(openlam_side(url, tasks, concurrent, ws))))


def prepared_workspace() -> str:
    """A workspace an earlier process has opened (its databases made), as every process
    but a workspace's very first finds it."""
    ws = tempfile.mkdtemp(prefix="bench-cost-")
    code = "import sys; from openlam import Workforce; Workforce(sys.argv[1]).open().close()"
    subprocess.run([sys.executable, "-c", code, ws], check=True, capture_output=True)
    return ws


def run_child(side: str, url: str, tasks: int, concurrent: int, fresh: bool) -> dict[str, Any]:
    ws = "" if side == "sdk" or fresh else prepared_workspace()
    done = subprocess.run(
        [sys.executable, __file__, "--child", side, url, str(tasks), str(concurrent), ws],
        capture_output=True,
        text=True,
    )
    if done.returncode:
        raise SystemExit(f"{side} child failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def import_time(modules: list[str], runs: int = 5) -> float:
    """Median wall of a fresh interpreter importing ``modules`` (what a run loaded)."""
    baseline = set(
        json.loads(
            subprocess.run(
                [sys.executable, "-c", "import sys, json; print(json.dumps(list(sys.modules)))"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
    )
    wanted = [m for m in modules if m not in baseline and m not in ("__main__", "bench_support")]
    code = (
        f"import importlib\nfor m in {wanted!r}:\n    try: importlib.import_module(m)\n"
        "    except Exception: pass\n"
    )
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], capture_output=True, check=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        child(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), sys.argv[6])
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=50)
    parser.add_argument("--concurrent", type=int, default=50)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", choices=["sdk", "openlam"])
    parser.add_argument(
        "--fresh-workspace",
        action="store_true",
        help="OpenLAM opens a new, empty workspace (its first open creates the databases)",
    )
    a = parser.parse_args()

    sides = [a.only] if a.only else ["sdk", "openlam"]
    results: dict[str, list[dict[str, Any]]] = {s: [] for s in sides}
    fast, fast_url = start_server(0.0)
    slow, slow_url = start_server(a.latency)
    try:
        for _ in range(a.rounds):  # alternate the sides, so load on the machine hits both
            for side in sides:
                seq = run_child(side, fast_url, a.tasks, 0, a.fresh_workspace)
                if a.concurrent:  # its own process: the peak RSS is that workload's
                    conc = run_child(side, slow_url, 0, a.concurrent, a.fresh_workspace)
                    seq.update(
                        concurrent_wall_s=conc["concurrent_wall_s"], peak_rss_mb=conc["peak_rss_mb"]
                    )
                results[side].append(seq)
    finally:
        fast.terminate()
        slow.terminate()

    def fig(side: str, key: str, fmt: str = "{:.1f}") -> str:
        values = [r[key] for r in results[side] if key in r]
        return " / ".join(fmt.format(v) for v in values) if values else "-"

    rows = [
        ("model requests / task", "requests_per_task", "{:.0f}"),
        ("prompt tokens sent / task", "prompt_tokens_per_task", "{:.0f}"),
        ("CPU ms / task at zero model latency", "cpu_ms_per_task", "{:.1f}"),
        ("wall ms / task at zero model latency", "wall_ms_per_task", "{:.1f}"),
        (
            f"{a.concurrent} concurrent tasks at {a.latency * 1000:.0f} ms latency, wall s",
            "concurrent_wall_s",
            "{:.2f}",
        ),
        ("peak RSS of that process, MB", "peak_rss_mb", "{:.0f}"),
        ("overhead CPU ms / task the outcome reports", "reported_overhead_cpu_ms", "{:.1f}"),
    ]
    print(f"| measure | {' | '.join(sides)} |")
    print(f"|---|{'---|' * len(sides)}")
    for label, key, fmt in rows:
        print(f"| {label} | {' | '.join(fig(s, key, fmt) for s in sides)} |")
    imports = {s: import_time(results[s][0]["modules"]) for s in sides}
    print(
        f"| import of what a run loads, s (median of 5) | "
        f"{' | '.join(f'{imports[s]:.2f}' for s in sides)} |"
    )
    if len(sides) == 2:
        med = {s: statistics.median(r["cpu_ms_per_task"] for r in results[s]) for s in sides}
        print(f"\nCPU ratio OpenLAM / SDK (medians): {med['openlam'] / med['sdk']:.2f}")


if __name__ == "__main__":
    main()
