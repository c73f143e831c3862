"""What a chat client reads: a run's progress as lines and its honest report as text.

Plain text with light Markdown (bold labels, bullet lists): chat clients render it, and
it stays readable where they do not. Every claim comes from the run's stored outcome —
a step is "done" only if its record says it succeeded.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from openlam.loop.events import Event, RunStarted
from openlam.loop.state import Outcome

# The terminal report's marks and shortening (openlam.cli.report), kept here: the CLI
# sits above the server (docs/architecture.md).
MARK = {"succeeded": "✓", "failed": "✗", "blocked": "■", "skipped": "-"}


def short(value: Any, limit: int = 70) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def progress_line(event: Event, agents: dict[str, str]) -> str | None:
    """One line for an event worth showing while the run works (None: not shown).
    ``agents`` maps run ids to their agents (filled from ``run.started``)."""
    if isinstance(event, RunStarted):
        agents[event.run_id] = event.agent
    child = event.root_id != event.run_id
    prefix = f"  ↳ {agents.get(event.run_id, event.run_id)}: " if child else ""
    line = _line(event)
    return None if line is None else prefix + line


def _line(e: Any) -> str | None:
    kind = e.kind
    if kind == "run.started":
        if e.root_id != e.run_id:
            return f"takes: {short(e.goal, 120)}"
        return f"Working on it: run {e.run_id} (agent {e.agent}, model {e.model})" + (
            " — resumed" if e.resumed else ""
        )
    if kind == "plan":
        steps = ", ".join(f"{s.get('id')} {s.get('action')}" for s in e.steps)
        return f"Plan v{e.version}: {steps or 'no steps'}"
    if kind == "step.started":
        return f"… {e.step} {e.action}"
    if kind == "step.finished":
        error = f": {short(e.error, 200)}" if e.error else ""
        return f"{MARK.get(e.status, '?')} {e.step} {e.action} {e.status}{error}"
    if kind == "replan":
        return f"Replanning: {short(e.reason, 200)}"
    if kind == "model.answered" and e.error:
        return f"✗ the model failed: {short(e.error, 200)}"
    if kind == "approval.requested":
        return f"Waiting for approval of {e.step} {e.action}: {e.reason} (approval id {e.approval})"
    if kind == "approval.decided":
        return f"Approval {e.approval}: {e.status}" + (f" by {e.by}" if e.by else "")
    if kind == "question":
        return f"Question ({e.step}): {e.question} — answer with: {e.answer_with}"
    if kind == "run.finished" and e.root_id != e.run_id:
        return f"finished: {e.status}"
    return None


def outcome_report(outcome: Outcome) -> str:
    """The final report of a run that ended: status, answer, what was done, deliverables,
    gaps, usage."""
    lines = [
        f"**{outcome.status.value}** — run {outcome.run_id} (agent {outcome.agent})",
        "",
        outcome.summary,
    ]
    if outcome.answer:
        lines += ["", f"**Answer**: {outcome.answer}"]
    lines += _steps(outcome.steps)
    if outcome.deliverables:
        lines += ["", "**Deliverables**:", *(f"- {d}" for d in outcome.deliverables)]
    if outcome.gaps:
        lines += [
            "",
            "**Gaps** (what the workforce lacks):",
            *(f"- {g.kind.value}: {g.what} — {g.why}" for g in outcome.gaps),
        ]
    u = outcome.usage
    lines += [
        "",
        f"_{u.model_requests} model requests, {u.input_tokens} tokens in, "
        f"{u.output_tokens} out, {u.wall_seconds:.1f} s_",
    ]
    return "\n".join(lines)


def _steps(steps: Sequence[Any]) -> list[str]:
    """Each step with its result or error; ``steps``: StepRecords or stored step rows."""
    if not steps:
        return []
    out = ["", "**Steps**:"]
    for s in steps:
        get = s.get if isinstance(s, dict) else lambda k, s=s: getattr(s, k, None)
        status = str(getattr(get("status"), "value", get("status")))
        detail = get("error") or get("output")
        tail = f" — {short(detail, 160)}" if detail not in (None, "", {}) else ""
        verified = " (verified)" if get("verified") else ""
        out.append(
            f"- {MARK.get(status, '?')} {get('id') or get('step_id')} "
            f"{get('action')}: {status}{verified}{tail}"
        )
    return out


def waiting_report(
    run: dict[str, Any], approvals: Sequence[Any], questions: Sequence[tuple[str, str, str]]
) -> str:
    """The reply for a run that waits for people: which approvals (with their ids and how
    to decide them) and which questions, and what was done so far. ``run``: the stored
    run; ``questions``: (run id, step, text) of unanswered questions."""
    lines = [
        f"**waiting** — run {run['id']} (agent {run.get('agent') or 'operator'}) is "
        "paused until a person decides; it continues by itself afterwards.",
        "",
    ]
    for a in approvals:
        lines += [
            f"- Approval **{a.id}**: step {a.step_id} `{a.action}` needs approval"
            + (f" ({a.reason})" if a.reason else "")
            + ".",
            f"  Decide with `openlam approvals approve {a.id}` (or deny / edit), "
            f"`POST /api/v1/approvals/{a.id}/approve`, or the dashboard's inbox "
            "(approver role).",
        ]
    for run_id, step, text in questions:
        lines += [
            f"- Question from step {step}: {text}",
            f'  Answer with `openlam runs answer {run_id} {step} "…"`.',
        ]
    lines += _steps([s for s in run.get("steps") or [] if s.get("status") != "pending"])
    lines += [
        "",
        f"Follow it at /api/v1/runs/{run['id']} (events: /api/v1/runs/{run['id']}/events).",
    ]
    return "\n".join(lines)


def still_running_report(run: dict[str, Any], waited: float) -> str:
    """The reply when a run is still working after the longest a reply waits."""
    if run.get("status") == "queued":  # no worker has taken it (yet): say so
        lines = [
            f"**queued** — run {run['id']} has waited {waited:.0f} s for a worker; "
            "it starts when one is free (`openlam status` shows the workers)."
        ]
    else:
        lines = [
            f"**running** — run {run['id']} is still working after {waited:.0f} s; "
            "it goes on without this conversation."
        ]
    lines += _steps([s for s in run.get("steps") or [] if s.get("status") != "pending"])
    lines += [
        "",
        f"Follow it at /api/v1/runs/{run['id']} (events: "
        f"/api/v1/runs/{run['id']}/events), or ask `openlam runs show {run['id']}`.",
    ]
    return "\n".join(lines)
