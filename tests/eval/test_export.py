"""`openlam learn export --format sft|dpo`: real runs and real approval decisions become
JSONL that validates against pydantic models of the OpenAI formats, with a planted secret
and email address removed (and counted), and a dataset card next to it."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Literal

import pytest
from pydantic import BaseModel, ConfigDict
from typer.testing import CliRunner

from openlam.cli.main import _install, app
from openlam.config import load_settings
from openlam.governance.api import approval_store
from openlam.learning.export import export
from openlam.testing import run_goal

SECRET = "planted-Zq8vX2-secret-value"
EMAIL = "jane.doe@example.com"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Function(Strict):
    name: str
    arguments: str


class ToolCall(Strict):
    id: str
    type: Literal["function"]
    function: Function


class Message(Strict):
    role: Literal["system", "user", "assistant", "tool"]
    content: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None


class FunctionDef(Strict):
    name: str
    description: str
    parameters: dict


class Tool(Strict):
    type: Literal["function"]
    function: FunctionDef


class SFTRecord(Strict):
    messages: list[Message]
    tools: list[Tool]


class DPOInput(Strict):
    messages: list[Message]
    tools: list[Tool]


class DPORecord(Strict):
    input: DPOInput
    preferred_output: list[Message]
    non_preferred_output: list[Message]


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_sft_records_validate_and_carry_no_secret_or_email(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACME_API_TOKEN", SECRET)
    plan = {
        "steps": [
            {
                "id": "s1",
                "action": "files.write",
                "args": {"path": "contact.txt", "content": f"Write to {EMAIL}, token {SECRET}"},
            },
            {
                "id": "s2",
                "action": "files.read",
                "args": {"path": "contact.txt"},
                "depends_on": ["s1"],
            },
        ]
    }
    done = asyncio.run(run_goal(f"save how to reach {EMAIL} in contact.txt", [plan], workspace))
    assert done.status.value == "completed"
    failed = asyncio.run(
        run_goal(
            "read missing.txt",
            [{"steps": [{"id": "s1", "action": "files.read", "args": {"path": "missing.txt"}}]}],
            workspace,
        )
    )
    assert failed.status.value != "completed"

    report = export(load_settings(workspace), "sft", workspace / "out" / "sft.jsonl")
    text = report.path.read_text()
    assert SECRET not in text and EMAIL not in text
    assert report.removed["email"] >= 3 and report.removed["known secret"] >= 1
    records = [SFTRecord.model_validate(r) for r in lines(report.path)]
    assert len(records) == 1 and report.skipped  # the failed run is left out
    msgs = records[0].messages
    assert [m.role for m in msgs] == ["system", "user", "assistant", "tool", "tool", "assistant"]
    calls = msgs[2].tool_calls or []
    assert [c.function.name for c in calls] == ["files__write", "files__read"]
    assert json.loads(calls[0].function.arguments)["path"] == "contact.txt"
    assert {t.function.name for t in records[0].tools} == {"files__write", "files__read"}
    assert "<email>" in msgs[1].content  # type: ignore[operator]
    card = (workspace / "out" / "README.md").read_text()
    assert "Records**: 1" in card and "| email |" in card


def test_dpo_pairs_from_edited_and_denied_approvals(workspace: Path) -> None:
    store = approval_store(load_settings(workspace))
    edited = store.request(
        "run-a",
        "s1",
        "email.send",
        {"to": [EMAIL], "subject": "Offer", "body": "50% off"},
        expires_in=600,
        goal="send the offer to our customer",
    )
    denied = store.request(
        "run-b",
        "s1",
        "payments.refund",
        {"charge": "ch_1", "amount": 900},
        expires_in=600,
        goal="refund the order",
    )
    approved = store.request(
        "run-c",
        "s1",
        "email.send",
        {"to": ["a@b.test"], "subject": "x", "body": "y"},
        expires_in=600,
    )
    store.edit(edited.id, "root", {"body": "10% off"}, "we never give 50%")
    store.deny(denied.id, "root", "refunds over 500 go through finance")
    store.approve(approved.id, "root")

    _install()
    out = workspace / "dpo" / "pairs.jsonl"
    result = CliRunner().invoke(
        app,
        ["learn", "export", "--format", "dpo", "--out", str(out), "--workspace", str(workspace)],
    )
    assert result.exit_code == 0, result.output
    assert "wrote 2 dpo record(s)" in result.output and "1 approved" in result.output
    records = [DPORecord.model_validate(r) for r in lines(out)]
    by_tool = {
        r.non_preferred_output[0].tool_calls[0].function.name: r  # type: ignore[index]
        for r in records
    }
    edit = by_tool["email__send"]
    chosen = json.loads(edit.preferred_output[0].tool_calls[0].function.arguments)  # type: ignore[index]
    rejected = json.loads(edit.non_preferred_output[0].tool_calls[0].function.arguments)  # type: ignore[index]
    assert chosen["body"] == "10% off" and rejected["body"] == "50% off"
    assert chosen["to"] == ["<email>"]  # personal data removed from both sides
    refusal = by_tool["payments__refund"].preferred_output[0]
    assert refusal.tool_calls is None and "finance" in (refusal.content or "")
    assert EMAIL not in out.read_text()
    assert (out.parent / "README.md").exists()
