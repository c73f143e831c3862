"""Two evaluations side by side: per task, and whether their goal-done rates differ
beyond chance (exact McNemar on the tasks both ran, else Fisher's exact test)."""

from __future__ import annotations

from typing import Any

from openlam.learning.evals.stats import fisher_exact, mcnemar_exact

ALPHA = 0.05


def compare_evals(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    done_a = {s.task_id: s.goal_done for s in a["scores"]}
    done_b = {s.task_id: s.goal_done for s in b["scores"]}
    tasks = sorted(set(done_a) | set(done_b))
    shared = [t for t in tasks if t in done_a and t in done_b]
    if shared:
        a_only = sum(done_a[t] and not done_b[t] for t in shared)
        b_only = sum(done_b[t] and not done_a[t] for t in shared)
        p = mcnemar_exact(a_only, b_only)
        test = (
            f"exact McNemar on {len(shared)} shared tasks ({a_only} done only by A, "
            f"{b_only} only by B)"
        )
    else:
        ya, yb = sum(done_a.values()), sum(done_b.values())
        p = fisher_exact(ya, len(done_a) - ya, yb, len(done_b) - yb)
        test = "Fisher's exact test (no shared tasks)"

    def rate(done: dict[str, bool]) -> float | None:
        return sum(done.values()) / len(done) if done else None

    ra, rb = rate(done_a), rate(done_b)
    if p >= ALPHA:
        verdict = f"no significant difference at level {ALPHA}"
    else:
        better = "A" if (ra or 0) > (rb or 0) else "B"
        verdict = f"{better} is better (significant at level {ALPHA})"
    return {
        "a": {"id": a["id"], "model": a["model"], "rate": ra},
        "b": {"id": b["id"], "model": b["model"], "rate": rb},
        "tasks": [{"task": t, "a": done_a.get(t), "b": done_b.get(t)} for t in tasks],
        "shared": len(shared),
        "test": test,
        "p_value": p,
        "verdict": verdict,
    }
