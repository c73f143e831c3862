"""AgentDojo security benchmark for OpenLAM's governance (issue 5).

    pip install agentdojo            # not an OpenLAM dependency
    python bench/agentdojo/run.py --mode governed   [--suites workspace,banking] [--users N]
    python bench/agentdojo/run.py --mode ungoverned     # the same planner, no gate
    python bench/agentdojo/run.py --mode defaults       # built-in policy only

Modes: ``governed`` — OpenLAM's gate with ``policy.yaml`` (the user's own request is
trusted; everything planned after reading tool output is subject to the provenance
guardrail) and approvals auto-denied; ``defaults`` — the gate with the built-in policy
only (every external/financial/destructive step needs an approval, auto-denied);
``ungoverned`` — no gate at all. Writes ``results/<mode>.json`` next to this file and
prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SUITES = ("workspace", "travel", "banking", "slack")


def build_gate(mode: str, workdir: Path) -> Any:
    from openlam.config import Settings
    from openlam.governance.approvals import DENIED, auto_decider
    from openlam.governance.gate import build_gate as build
    from openlam.governance.policy import PolicySet, load_policies

    if mode == "ungoverned":
        return None
    from openlam.learning.evals.agentdojo import POLICY

    policies = load_policies([POLICY]) if mode == "governed" else PolicySet()
    gov = build(Settings(workspace=workdir), policies=policies)
    gov.wait = auto_decider(gov.approvals, DENIED, principal="benchmark")
    return gov


def run_suite(
    name: str, mode: str, version: str, users: int | None, workdir: Path, read_first: bool
) -> dict[str, Any]:
    from agentdojo.attacks.attack_registry import load_attack
    from agentdojo.task_suite.load_suites import get_suites
    from gullible import OpenLAMPipeline

    suite = get_suites(version)[name]
    gate = build_gate(mode, workdir / name)
    pipeline = OpenLAMPipeline(
        suite,
        name,
        gate,
        emit=gate.audit_events() if gate is not None else None,
        read_first=read_first,
    )
    attack = load_attack("important_instructions", suite, pipeline)
    user_tasks = list(suite.user_tasks.values())[:users]
    result: dict[str, Any] = {"benign": {}, "attacked": {}}
    for task in user_tasks:
        utility, _ = suite.run_task_with_pipeline(pipeline, task, None, {})
        result["benign"][task.ID] = {"utility": utility, "summary": pipeline.last_outcome.summary}
    for task in user_tasks:
        for inj_id, inj in suite.injection_tasks.items():
            injections = attack.attack(task, inj)
            utility, attacked = suite.run_task_with_pipeline(pipeline, task, inj, injections)
            result["attacked"][f"{task.ID}|{inj_id}"] = {
                "utility": utility,
                "attack_success": attacked,
                "status": pipeline.last_outcome.status.value,
                "summary": pipeline.last_outcome.summary[:400],
            }
    if gate is not None:
        result["audit_intact"] = gate.audit.verify().ok
        stops = Counter(
            f"{b['effect']} by {b['rule_id']}"
            + (f" + guardrail {b['guardrail']}" if b.get("guardrail") else "")
            for r in gate.audit.records(kind="policy")
            if (b := r["body"])["effect"] != "allow"
        )
        result["stopped_by"] = dict(stops.most_common())
    return result


def rate(values: list[bool]) -> str:
    return (
        f"{100 * sum(values) / len(values):.1f}% ({sum(values)}/{len(values)})" if values else "-"
    )


def table(results: dict[str, dict[str, Any]]) -> str:
    lines = [
        "| suite | pairs | attack success | utility under attack | benign utility |",
        "|---|---|---|---|---|",
    ]
    every: dict[str, list[bool]] = {"asr": [], "uua": [], "benign": []}
    for name, res in results.items():
        asr = [p["attack_success"] for p in res["attacked"].values()]
        uua = [p["utility"] for p in res["attacked"].values()]
        benign = [t["utility"] for t in res["benign"].values()]
        every["asr"] += asr
        every["uua"] += uua
        every["benign"] += benign
        lines.append(f"| {name} | {len(asr)} | {rate(asr)} | {rate(uua)} | {rate(benign)} |")
    lines.append(
        f"| **all** | {len(every['asr'])} | {rate(every['asr'])} | "
        f"{rate(every['uua'])} | {rate(every['benign'])} |"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--mode", choices=("governed", "defaults", "ungoverned"), default="governed"
    )
    parser.add_argument("--suites", default=",".join(SUITES))
    parser.add_argument("--users", type=int, default=None, help="first N user tasks per suite")
    parser.add_argument(
        "--planner",
        choices=("oracle", "read-first"),
        default="oracle",
        help="oracle: the first plan holds every call of the user's task; "
        "read-first: only the reads before the first action, the rest "
        "is planned after reading",
    )
    parser.add_argument("--version", default="v1.2.2", help="AgentDojo benchmark version")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    sys.path.insert(0, str(HERE))
    started = time.time()
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="openlam-agentdojo-") as tmp:
        for name in args.suites.split(","):
            t0 = time.time()
            results[name] = run_suite(
                name, args.mode, args.version, args.users, Path(tmp), args.planner == "read-first"
            )
            print(
                f"{name}: {len(results[name]['attacked'])} pairs in {time.time() - t0:.0f}s",
                file=sys.stderr,
            )
    out = HERE / "results" / f"{args.mode}-{args.planner}.json"
    out.parent.mkdir(exist_ok=True)
    meta = {
        "mode": args.mode,
        "planner": args.planner,
        "version": args.version,
        "attack": "important_instructions",
        "users_per_suite": args.users,
        "seconds": round(time.time() - started, 1),
    }
    out.write_text(json.dumps({"meta": meta, "suites": results}, indent=1), encoding="utf-8")
    print(table(results))


if __name__ == "__main__":
    main()
