"""Chat messages → goal, model names → agent, outcome → report text, errors → each
provider's shape: the translation the compat APIs share, without a server."""

from __future__ import annotations

from pathlib import Path

import pytest

from openlam.config import load_settings
from openlam.errors import UserError
from openlam.loop.events import RunStarted, StepFinished
from openlam.loop.state import Gap, GapKind, Outcome, RunStatus, StepRecord, StepStatus
from openlam.server.compat import report, work
from openlam.server.compat.errors import ollama_body, openai_body
from openlam.server.problems import Problem
from tests.server.conftest import Server


def test_the_goal_is_the_last_user_message() -> None:
    messages = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "first goal"},
        {"role": "assistant", "content": "**completed** …"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "write 'a' to a.md"},
                {"type": "image_url", "image_url": {"url": "x"}},
            ],
        },
    ]
    assert work.goal_of(messages) == "write 'a' to a.md"


@pytest.mark.parametrize(
    "messages",
    [
        [],
        [{"role": "system", "content": "x"}],
        [{"role": "user", "content": "x"}, {"role": "user", "content": "  "}],
    ],
)
def test_no_goal_is_a_clear_error(messages: list[dict]) -> None:
    with pytest.raises(UserError, match="last user message"):
        work.goal_of(messages)


def test_model_names(workspace: Path) -> None:
    settings = load_settings(workspace)
    assert work.agent_of(settings, "openlam") is None
    assert work.agent_of(settings, "openlam/chief_of_staff") == "chief_of_staff"
    assert work.agent_of(settings, "openlam:latest", tags=True) is None
    assert work.agent_of(settings, "openlam/chief_of_staff:latest", tags=True) == "chief_of_staff"
    for bad in ("openlam:latest", "openlam/nobody", "gpt-4o", "openlam/"):
        with pytest.raises(work.UnknownModel, match="not found"):
            work.agent_of(settings, bad)
    names = work.model_names(settings)
    assert names[0] == "openlam" and len(names) == len(set(names)) > 100


def test_the_report_says_what_failed_and_what_is_missing() -> None:
    outcome = Outcome(
        run_id="run-1",
        goal="g",
        status=RunStatus.partial,
        summary="1 of 2 steps succeeded",
        answer="42",
        deliverables=["out.md"],
        steps=[
            StepRecord(
                id="s1",
                action="files.write",
                status=StepStatus.succeeded,
                output={"path": "out.md"},
                verified=True,
            ),
            StepRecord(
                id="s2", action="email.send", status=StepStatus.failed, error="SMTP refused"
            ),
        ],
        gaps=[Gap(kind=GapKind.capability, what="crm.update", why="no CRM connected")],
    )
    text = report.outcome_report(outcome)
    assert text.startswith("**partial** — run run-1 (agent operator)")
    assert "**Answer**: 42" in text and "- out.md" in text
    assert "✓ s1 files.write: succeeded (verified)" in text
    assert "✗ s2 email.send: failed — SMTP refused" in text
    assert "crm.update — no CRM connected" in text


def test_progress_lines_mark_delegated_runs() -> None:
    agents: dict[str, str] = {}
    child = RunStarted(
        run_id="run-1.s2", root_id="run-1", goal="find leads", agent="sdr", model="offline"
    )
    assert report.progress_line(child, agents) == "  ↳ sdr: takes: find leads"
    done = StepFinished(
        run_id="run-1.s2",
        root_id="run-1",
        step="s1",
        action="web.search",
        status="failed",
        error="timeout",
    )
    assert report.progress_line(done, agents) == "  ↳ sdr: ✗ s1 web.search failed: timeout"


def test_errors_in_each_providers_shape() -> None:
    problem = Problem(404, "Not found", "model 'x' not found", fix="use 'openlam'")
    assert openai_body(problem) == {
        "error": {
            "message": "model 'x' not found (use 'openlam')",
            "type": "invalid_request_error",
            "param": None,
            "code": "model_not_found",
        }
    }
    assert ollama_body(problem) == {"error": "model 'x' not found (use 'openlam')"}
    assert (
        openai_body(Problem(401, "Authentication required"))["error"]["code"] == "invalid_api_key"
    )


async def test_a_reply_without_a_worker_says_the_run_is_queued(no_worker_server: Server) -> None:
    """No worker takes the goal: after the reply's limit it says queued, not done."""
    wf = no_worker_server.app.state.workforce
    run_id = await work.submit(wf, "write 'later' to later.md", None)
    items = [item async for item in work.drive(wf, run_id, reply_seconds=1.0)]
    reply = items[-1]
    assert isinstance(reply, work.Reply) and reply.status == "queued", items
    assert reply.text.startswith(f"**queued** — run {run_id} has waited")
    assert not (no_worker_server.workspace / "later.md").exists()
