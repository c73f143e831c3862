"""Learning benchmarks (issue 13): model requests and tokens per goal over 100 goals
drawn from 10 shapes (first occurrence of a shape vs later ones), and the cost of
matching a goal against 10,000 playbooks.

Part 1 runs every goal through the real durable loop (Workforce, DBOS on SQLite,
governance) with a fake OpenAI-compatible server in this process that plans each goal
from its text; requests and prompt tokens are counted by the server.
Part 2 fills a project database with 10,000 playbooks of distinct shapes and times
``Learner.consult_now`` — the hook a run calls before planning — for goals that match
one of them, for rewordings of them (values moved: same gist, another shape) and for
goals that match none (which also builds the planner's advice).

    python bench/bench_learning.py [--goals 100] [--playbooks 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

VERBS = ["record", "log", "file", "store", "keep", "note", "save", "put", "archive", "jot"]
SHAPES = [f"{verb} the message '{{text}}' for ticket {{n}} in {{file}}" for verb in VERBS]
GOAL = re.compile(r"'([^']*)' for ticket (\d+) in (\S+)$")


def plan_for(body: dict[str, Any]) -> dict[str, Any]:
    goal = next(m["content"] for m in body["messages"] if m["role"] == "user")
    found = GOAL.search(goal)
    if found is None:
        return {"steps": []}
    text, n, file = found.groups()
    return {
        "steps": [
            {
                "id": "w",
                "action": "files.write",
                "args": {"path": file, "content": f"ticket {n}: {text}"},
            },
            {"id": "r", "action": "files.read", "args": {"path": file}, "depends_on": ["w"]},
        ]
    }


def goals(count: int, seed: int = 7) -> list[tuple[int, str]]:
    rng = random.Random(seed)
    out = []
    for i in range(count):
        k = rng.randrange(len(SHAPES))
        out.append(
            (k, SHAPES[k].format(text=f"reply {i} sent", n=1000 + i, file=f"t{i}/ticket-{i}.md"))
        )
    return out


async def sequence(count: int) -> None:
    from tests.fakes.model_servers import FakeOpenAI

    from openlam import Workforce
    from openlam.config import load_settings

    seen: set[int] = set()
    first: list[tuple[int, int]] = []
    later: list[tuple[int, int]] = []
    wrong = 0
    with tempfile.TemporaryDirectory() as tmp, FakeOpenAI(plan_for) as server:
        settings = load_settings(tmp).with_overrides(openai_base_url=f"{server.url}/v1")
        async with Workforce(settings=settings, model="openai:fake") as wf:
            for k, goal in goals(count):
                asked, tokens = server.chat_requests, server.prompt_tokens
                outcome = await wf.run(goal)
                file = GOAL.search(goal).groups()  # type: ignore[union-attr]
                ok = (
                    outcome.status.value == "completed"
                    and (Path(tmp) / file[2]).read_text() == f"ticket {file[1]}: {file[0]}"
                )
                wrong += not ok
                cost = (server.chat_requests - asked, server.prompt_tokens - tokens)
                (later if k in seen else first).append(cost)
                seen.add(k)
    free = sum(1 for r, _ in later if r == 0)
    print(f"goals: {count} from {len(SHAPES)} shapes; not completed correctly: {wrong}")
    for name, rows in (("first of a shape", first), ("later", later)):
        if rows:
            print(
                f"  {name}: {len(rows)} goals, model requests/goal "
                f"{sum(r for r, _ in rows) / len(rows):.2f}, prompt tokens/goal "
                f"{sum(t for _, t in rows) / len(rows):.0f}"
            )
    print(
        f"  later goals with no model request: {free}/{len(later)} "
        f"({100 * free / max(len(later), 1):.0f} %)"
    )


def word(i: int) -> str:
    """A distinct word of letters for each number (digits would make it a literal)."""
    letters = ""
    while True:
        i, r = divmod(i, 26)
        letters += chr(97 + r)
        if i == 0:
            return "kind" + letters


def matching(n: int) -> None:
    from openlam.actions.registry import load_plugins
    from openlam.config import load_settings
    from openlam.learning.learner import Learner
    from openlam.learning.playbooks import generalise
    from openlam.learning.store import LearningStore, playbook_row
    from openlam.loop.perceive import AgentProfile, perceive
    from openlam.memory.store import Store
    from openlam.memory.tables import learn_playbooks

    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(tmp)
        url = settings.app_database_url
        Store(url)
        store = LearningStore(url)
        rows, now = [], time.time()
        for i in range(n):  # n distinct shapes: a different word in each
            goal = f"archive the message 'hello' for ticket 5 in box{i}/x.md as {word(i)}"
            pb, _ = generalise(
                goal,
                [
                    {
                        "id": "w",
                        "action": "files.write",
                        "args": {"path": f"box{i}/x.md", "content": "hello 5"},
                    }
                ],
            )
            assert pb is not None
            pb.agent, pb.model = "operator", "bench"
            rows.append({**playbook_row(pb, "bench", now), "updated_at": now + i})
        with store.engine.begin() as conn:
            conn.execute(learn_playbooks.insert(), rows)
        learner = Learner(url, load_plugins(settings=settings))
        registry = learner.registry
        p_hit = [
            perceive(
                f"archive the message 'bye {j}' for ticket {j} in box{j * 37 % n}/y.md "
                f"as {word(j * 37 % n)}",
                AgentProfile(),
                registry,
            )
            for j in range(200)
        ]
        p_reworded = [
            perceive(
                f"archive the message 'bye {j}' for ticket {j} as "
                f"{word(j * 37 % n)} in box{j * 37 % n}/y.md",
                AgentProfile(),
                registry,
            )
            for j in range(200)
        ]
        p_miss = [
            perceive(f"summarise ticket {j} for the weekly report", AgentProfile(), registry)
            for j in range(200)
        ]
        for label, batch, want in (
            ("matching goal", p_hit, True),
            ("reworded goal (values moved)", p_reworded, True),
            ("no match (advice)", p_miss, False),
        ):
            times = []
            for p in batch:
                t = time.perf_counter()
                found = learner.consult_now(p)
                times.append((time.perf_counter() - t) * 1000)
                assert (found.plan is not None) is want, (label, p.goal)
            times.sort()
            print(
                f"  {label}: median {statistics.median(times):.2f} ms, "
                f"p95 {times[int(len(times) * 0.95)]:.2f} ms per goal ({n} playbooks)"
            )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--goals", type=int, default=100)
    ap.add_argument("--playbooks", type=int, default=10_000)
    args = ap.parse_args()
    print("1. model requests over a sequence of goals")
    asyncio.run(sequence(args.goals))
    print("2. consult cost")
    matching(args.playbooks)


if __name__ == "__main__":
    main()
