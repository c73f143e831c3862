"""Training data from the workforce's experience (``openlam learn export --format``).

* ``sft`` — every run that ended ``completed`` with every step verified or succeeded, as
  one supervised fine-tuning record in the OpenAI chat format: the planner's system
  prompt, the goal, the assistant's tool calls (each action, its arguments), the tool
  results, and the final answer; the used actions as ``tools``.
* ``dpo`` — preference pairs in the OpenAI preference format from people's decisions on
  approvals: an edited approval prefers the edited call over the proposed one; a denied
  one prefers not acting (the reason given) over the proposed call.

Everything passes :class:`~openlam.learning.scrub.Scrubber` (secrets, credentials, email
addresses, phone numbers, IBANs), and the counts of what was removed go into the report
and the dataset card written next to the JSONL file.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from openlam.learning.scrub import Scrubber

FORMATS = ("sft", "dpo")
TOOL_NAME = re.compile(r"[^A-Za-z0-9_-]")


def tool_name(action: str) -> str:
    """An action as an OpenAI function name (``files.write`` → ``files__write``)."""
    return TOOL_NAME.sub("_", action.replace(".", "__"))[:64]


@dataclass
class ExportReport:
    format: str
    path: Path
    records: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    removed: dict[str, int] = field(default_factory=dict)
    card: Path | None = None


def export(settings: Any, fmt: str, out: Path) -> ExportReport:
    from openlam.errors import UserError

    if fmt not in FORMATS:
        raise UserError(f"unknown format {fmt!r}", f"use one of: {', '.join(FORMATS)}")
    scrubber = Scrubber.for_settings(settings)
    report = ExportReport(fmt, out)
    records = (sft_records if fmt == "sft" else dpo_records)(settings, scrubber, report)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
            report.records += 1
    report.removed = scrubber.report()
    report.card = write_card(report)
    return report


def _system() -> str:
    from openlam.models.packaging import system_prompt

    return system_prompt()


def _tools(settings: Any, actions: list[str]) -> list[dict[str, Any]]:
    from openlam.actions.registry import load_plugins

    registry = load_plugins(settings=settings)
    tools = []
    for name in dict.fromkeys(actions):
        spec = registry.get(name)
        tools.append(
            {
                "type": "function",
                "function": {
                    "name": tool_name(name),
                    "description": (spec.description if spec else f"OpenLAM action {name}")[:1024],
                    "parameters": spec.input_schema if spec else {"type": "object"},
                },
            }
        )
    return tools


def _call(call_id: str, action: str, args: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": call_id,
        "type": "function",
        "function": {"name": tool_name(action), "arguments": json.dumps(args)},
    }


def sft_records(settings: Any, scrubber: Scrubber, report: ExportReport) -> list[dict[str, Any]]:
    from openlam.memory.engines import engine_for
    from openlam.memory.tables import runs

    with engine_for(settings.app_database_url).connect() as conn:
        rows = conn.execute(
            sa.select(runs.c.id, runs.c.goal, runs.c.status, runs.c.outcome)
            .where(runs.c.parent_id.is_(None))
            .order_by(runs.c.created_at)
        ).all()
    out = []
    for row in rows:
        outcome = row.outcome or {}
        steps = [s for s in outcome.get("steps", []) if s.get("status") == "succeeded"]
        if row.status != "completed" or not steps:
            why = row.status if row.status != "completed" else "completed without steps"
            report.skipped[why] = report.skipped.get(why, 0) + 1
            continue
        calls = [_call(f"call_{s['id']}", s["action"], s.get("args") or {}) for s in steps]
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": _system()},
            {"role": "user", "content": row.goal},
            {"role": "assistant", "content": None, "tool_calls": calls},
        ]
        messages += [
            {
                "role": "tool",
                "tool_call_id": f"call_{s['id']}",
                "content": json.dumps(s.get("output"), default=str),
            }
            for s in steps
        ]
        messages.append(
            {
                "role": "assistant",
                "content": outcome.get("answer") or outcome.get("summary") or "Done.",
            }
        )
        record = {"messages": messages, "tools": _tools(settings, [s["action"] for s in steps])}
        out.append(scrubber.value(record))
    return out


def dpo_records(settings: Any, scrubber: Scrubber, report: ExportReport) -> list[dict[str, Any]]:
    from openlam.governance.api import approval_store
    from openlam.governance.approvals import DENIED, EDITED

    out = []
    for approval in approval_store(settings).list():
        if approval.status not in (EDITED, DENIED):
            report.skipped[approval.status] = report.skipped.get(approval.status, 0) + 1
            continue
        prompt = [
            {"role": "system", "content": _system()},
            {"role": "user", "content": approval.goal or f"(run {approval.run_id})"},
        ]
        proposed = {
            "role": "assistant",
            "content": None,
            "tool_calls": [_call("call_0", approval.action, approval.args)],
        }
        if approval.status == EDITED:
            preferred = {
                "role": "assistant",
                "content": None,
                "tool_calls": [_call("call_0", approval.action, approval.effective_args)],
            }
        else:
            why = approval.comment or "a person denied it"
            preferred = {
                "role": "assistant",
                "content": f"I will not run {approval.action} with these arguments: {why}.",
            }
        record = {
            "input": {"messages": prompt, "tools": _tools(settings, [approval.action])},
            "preferred_output": [preferred],
            "non_preferred_output": [proposed],
        }
        out.append(scrubber.value(record))
    return out


def write_card(report: ExportReport) -> Path:
    """README.md next to the JSONL: what it is, how it was made, what was removed."""
    card = report.path.parent / "README.md"
    kind = (
        "supervised fine-tuning (OpenAI chat format with tool calls)"
        if report.format == "sft"
        else "preference pairs (OpenAI preference format: input, preferred_output, "
        "non_preferred_output)"
    )
    removed = (
        "\n".join(f"| {k} | {v} |" for k, v in report.removed.items()) or "| (nothing found) | 0 |"
    )
    skipped = ", ".join(f"{v} {k}" for k, v in report.skipped.items()) or "none"
    card.write_text(
        f"""# OpenLAM training data: {report.path.name}

- **Format**: {kind}
- **Records**: {report.records}
- **Made**: {time.strftime("%Y-%m-%d %H:%M:%S %Z")} by `openlam learn export --format \
{report.format}`
- **Source**: {
            "runs that ended completed (top-level runs; delegated children are inside "
            "their parent's outcome)"
            if report.format == "sft"
            else "approvals a person edited (edited call preferred) or denied (not acting "
            "preferred)"
        }
- **Left out**: {skipped}
- **Tool names**: actions as OpenAI function names, `.` → `__` (`files.write` → `files__write`)

## Removed before writing

Known secret values (the workspace's secrets and secret-looking environment variables),
credentials by pattern, email addresses, phone numbers and IBANs were replaced by
placeholders (`<secret>`, `<api-key>`, `<email>`, `<phone>`, `<iban>`…):

| kind | occurrences |
|---|---|
{removed}

Review the file before sharing it: pattern-based removal finds the common shapes of
personal data, not every name or address written in free text.
""",
        encoding="utf-8",
    )
    return card
