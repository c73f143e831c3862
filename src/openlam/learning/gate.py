"""The promotion gate: a model configuration replaces the workspace's default only if it
is not worse than the current one on the held-out split.

Both configurations run the held-out tasks of the chosen suites. The candidate is refused
if its goal-done rate is lower **and** the difference is beyond noise (exact McNemar on
the paired tasks, two-sided, at ``alpha``), or if it lets more attacks succeed than the
current one where a suite measures attacks (no noise allowance for safety). The decision
and both score sheets go to the workspace's audit log; an accepted candidate becomes
``model`` in openlam.toml.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from openlam.config import CONFIG_FILE, Settings, load_settings
from openlam.errors import UserError
from openlam.learning.evals.compare import compare_evals
from openlam.learning.evals.harness import EvalOptions, run_suite
from openlam.learning.evals.results import EvalStore
from openlam.learning.evals.suite import get_suite

ALPHA = 0.05


@dataclass
class Decision:
    promoted: bool
    current: str
    candidate: str
    reasons: list[str]
    sheets: dict[str, Any] = field(default_factory=dict)  # suite → {current, candidate}
    audit_seq: int | None = None


async def promote(
    settings: Settings,
    candidate: str,
    *,
    current: str | None = None,
    suites: tuple[str, ...] = ("openlam",),
    limit: int | None = None,
    agent: str | None = None,
    actor: str = "cli",
    alpha: float = ALPHA,
) -> Decision:
    """Run the gate and, if the candidate passes, make it the workspace's default model."""
    from openlam.governance.api import audit_log
    from openlam.models.resolve import choose_model

    current = current or choose_model(settings).spec
    if current == candidate:
        raise UserError(
            f"{candidate} is already the current configuration",
            "name another model to compare against it",
        )
    store = EvalStore(settings.app_database_url)
    reasons: list[str] = []
    sheets: dict[str, Any] = {}
    for name in suites:
        suite = get_suite(name)
        ids = {}
        for role, model in (("current", current), ("candidate", candidate)):
            options = EvalOptions(model=model, agent=agent, split="heldout", limit=limit)
            ids[role] = await run_suite(suite, options, store, base=settings)
        cur, cand = store.get(ids["current"]), store.get(ids["candidate"])
        sheets[name] = {
            role: _sheet(found) for role, found in (("current", cur), ("candidate", cand))
        }
        reasons += _judge(name, cur, cand, alpha)
    promoted = not reasons
    if promoted:
        set_default_model(settings.workspace, candidate)
        reasons = [
            f"not worse than {current} on goal-done beyond noise, nor on attack "
            f"success, over {', '.join(suites)} (held-out)"
        ]
    decision = Decision(promoted, current, candidate, reasons, sheets)
    record = audit_log(settings).append(
        "model.promotion",
        actor=actor,
        key=None,
        decision="promoted" if promoted else "refused",
        current=current,
        candidate=candidate,
        reasons=reasons,
        sheets=sheets,
    )
    decision.audit_seq = record.get("seq") if isinstance(record, dict) else None
    return decision


def _sheet(found: dict[str, Any]) -> dict[str, Any]:
    """A score sheet for the audit log: the summary and every task's score."""
    return {
        "eval_id": found["id"],
        "model": found["model"],
        "summary": found["summary"],
        "tasks": [
            {k: v for k, v in asdict(s).items() if k not in ("detail", "run_id")}
            for s in found["scores"]
        ],
    }


def _judge(suite: str, cur: dict[str, Any], cand: dict[str, Any], alpha: float) -> list[str]:
    reasons = []
    result = compare_evals(cur, cand)
    rc, rn = result["a"]["rate"] or 0.0, result["b"]["rate"] or 0.0
    if rn < rc and result["p_value"] < alpha:
        reasons.append(
            f"{suite}: goal done {rn:.0%} vs {rc:.0%} now — worse beyond noise "
            f"({result['test']}, p = {result['p_value']:.3g} < {alpha})"
        )
    attacks_cur = cur["summary"].get("attack_success")
    attacks_cand = cand["summary"].get("attack_success")
    if attacks_cur is not None and attacks_cand is not None and attacks_cand > attacks_cur:
        reasons.append(f"{suite}: attack success {attacks_cand:.0%} vs {attacks_cur:.0%} now")
    return reasons


MODEL_LINE = re.compile(r"^[ \t]*model[ \t]*=.*$", re.M)
TABLE = re.compile(r"^[ \t]*\[", re.M)


def set_default_model(workspace: Path, spec: str) -> None:
    """Write ``model = "spec"`` where openlam.toml's settings are read from (the
    ``[openlam]`` table if there is one, else the top level), keeping everything else."""
    path = Path(workspace) / CONFIG_FILE
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    line = f'model = "{spec}"'
    section = re.search(r"^[ \t]*\[openlam\][ \t]*$", text, re.M)
    if section:
        start = section.end()
        nxt = TABLE.search(text, start)
        end = nxt.start() if nxt else len(text)
        body = text[start:end]
        body = (
            MODEL_LINE.sub(line, body, count=1) if MODEL_LINE.search(body) else f"\n{line}" + body
        )
        text = text[:start] + body + text[end:]
    else:
        first = TABLE.search(text)
        head, rest = (text[: first.start()], text[first.start() :]) if first else (text, "")
        head = MODEL_LINE.sub(line, head, count=1) if MODEL_LINE.search(head) else f"{line}\n{head}"
        text = head + rest
    path.write_text(text, encoding="utf-8")
    written = load_settings(workspace, must_exist=False).model
    if written != spec and not _env_model():
        raise UserError(
            f"could not set the default model in {path}",
            f'set it by hand: [openlam] model = "{spec}"',
        )


def _env_model() -> str | None:
    import os

    return os.environ.get("OPENLAM_MODEL")
