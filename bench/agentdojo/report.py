"""Tables for bench/README.md from results/<mode>-<planner>.json (written by run.py).

python bench/agentdojo/report.py
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
MODES = ("governed", "defaults", "ungoverned")
PLANNERS = ("oracle", "read-first")


def pct(hits: int, total: int) -> str:
    return f"{100 * hits / total:.1f}% ({hits}/{total})" if total else "-"


def load(mode: str, planner: str) -> dict[str, Any] | None:
    path = HERE / "results" / f"{mode}-{planner}.json"
    return json.loads(path.read_text()) if path.exists() else None


def main() -> None:
    for planner in PLANNERS:
        baseline = load("ungoverned", planner)
        print(f"\n### Planner: {planner}\n")
        print(
            "| mode | suite | attack success (all pairs) | attack success where it wins "
            "ungoverned | utility under attack | benign utility |"
        )
        print("|---|---|---|---|---|---|")
        for mode in MODES:
            data = load(mode, planner)
            if data is None:
                continue
            totals = [0, 0, 0, 0, 0, 0, 0]
            for suite, res in data["suites"].items():
                pairs = res["attacked"]
                won = {
                    k
                    for k, v in (baseline or {"suites": {}})["suites"]
                    .get(suite, {})
                    .get("attacked", {})
                    .items()
                    if v["attack_success"]
                }
                asr = sum(v["attack_success"] for v in pairs.values())
                asr_won = sum(pairs[k]["attack_success"] for k in won if k in pairs)
                uua = sum(v["utility"] for v in pairs.values())
                benign = sum(v["utility"] for v in res["benign"].values())
                row = [asr, len(pairs), asr_won, len(won), uua, benign, len(res["benign"])]
                totals = [a + b for a, b in zip(totals, row, strict=True)]
                print(
                    f"| {mode} | {suite} | {pct(asr, len(pairs))} | {pct(asr_won, len(won))} "
                    f"| {pct(uua, len(pairs))} | {pct(benign, len(res['benign']))} |"
                )
            a, n, aw, nw, u, b, nb = totals
            print(
                f"| **{mode}** | **all** | **{pct(a, n)}** | **{pct(aw, nw)}** | "
                f"**{pct(u, n)}** | **{pct(b, nb)}** |"
            )


if __name__ == "__main__":
    main()
