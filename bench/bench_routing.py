"""Routing benchmark (issue 4): time to route a goal across the whole catalog, with no
model, and accuracy on the labelled goals in bench/routing_goals.yaml.

    python bench/bench_routing.py [--repeat 200] [--show-misses] [--workspace DIR]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import yaml

from openlam.org import load_catalog
from openlam.org.routing import Router

GOALS = Path(__file__).with_name("routing_goals.yaml")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--repeat", type=int, default=200, help="routings of each goal for the timing (default 200)"
    )
    parser.add_argument("--show-misses", action="store_true")
    parser.add_argument("--workspace", default=None, help="also load DIR/agents/*.yaml")
    args = parser.parse_args()

    labelled = yaml.safe_load(GOALS.read_text(encoding="utf-8"))["goals"]
    start = time.perf_counter()
    catalog = load_catalog(args.workspace)
    load_ms = (time.perf_counter() - start) * 1000
    start = time.perf_counter()
    router = Router(catalog)
    index_ms = (time.perf_counter() - start) * 1000

    hits, misses = 0, []
    per_department: dict[str, list[int]] = {}
    for item in labelled:
        chosen = router.route(item["goal"])
        ok = chosen.department.id == item["department"]
        hits += ok
        tally = per_department.setdefault(item["department"], [0, 0])
        tally[0] += ok
        tally[1] += 1
        if not ok:
            misses.append((item, chosen))

    samples = []
    for _ in range(args.repeat):
        for item in labelled:
            t0 = time.perf_counter_ns()
            router.route(item["goal"])
            samples.append(time.perf_counter_ns() - t0)
    samples.sort()
    median_us = statistics.median(samples) / 1000
    p95_us = samples[int(len(samples) * 0.95)] / 1000

    print(
        f"catalog: {len(catalog)} agents in {len(catalog.departments)} departments "
        f"(load {load_ms:.1f} ms, index {index_ms:.1f} ms)"
    )
    print(
        f"routing time per goal, no model: median {median_us:.0f} µs, p95 {p95_us:.0f} µs "
        f"({len(samples)} routings)"
    )
    print(f"accuracy (department): {hits}/{len(labelled)} = {hits / len(labelled):.1%}")
    print(
        "per department: "
        + ", ".join(f"{d} {ok}/{n}" for d, (ok, n) in sorted(per_department.items()))
    )
    if args.show_misses:
        for item, chosen in misses:
            print(
                f"  MISS want {item['department']:<11} got {chosen.department.id:<11} "
                f"({chosen.agent.id}) {item['goal']}"
            )


if __name__ == "__main__":
    main()
