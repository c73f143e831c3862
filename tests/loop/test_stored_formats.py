"""What a run stores must load again after an upgrade: a queued or interrupted run's
request (its workflow input, written with ``agent`` as a plain dict before it was typed)
and a journaled step result. Both are the same JSON as before the typed core."""

from __future__ import annotations

from typing import Any

from openlam.loop.perceive import AgentProfile
from openlam.loop.plan import ModelReply
from openlam.loop.runner import Routing, RunRequest
from openlam.loop.state import StepResult

# RunRequest.agent as the untyped code wrote it: asdict(AgentProfile()), actions a list.
OLD_OPERATOR: dict[str, Any] = {
    "id": "operator",
    "name": "Operator",
    "title": "general operator",
    "instructions": "Do exactly what the goal asks, with as few steps as possible.",
    "actions": ["*"],
    "department": "",
    "manager": None,
    "model": None,
    "max_steps": None,
    "max_model_requests": None,
    "shared_board": True,
}
OLD_CLERK = {
    **OLD_OPERATOR,
    "id": "clerk",
    "title": "accounts clerk (Finance)",
    "actions": ["files.*", "!files.delete"],
    "department": "finance",
    "manager": "controller",
    "max_steps": 4,
}


def test_the_agent_profile_is_stored_as_the_old_dict_was():
    assert AgentProfile().model_dump(mode="json") == OLD_OPERATOR
    request = RunRequest.model_validate({"run_id": "r", "goal": "g", "agent": OLD_CLERK})
    assert request.agent.id == "clerk" and request.agent.actions == ("files.*", "!files.delete")
    assert request.model_dump(mode="json")["agent"] == OLD_CLERK


def test_a_request_queued_with_an_empty_agent_is_the_general_operator():
    """``agent: {}`` (the untyped default) meant the general operator with every action."""
    request = RunRequest.model_validate({"run_id": "r", "goal": "g", "agent": {}})
    assert request.agent == AgentProfile() and request.agent.actions == ("*",)


def test_routing_written_as_a_dict_loads():
    """``routing`` was a dict: {} when nobody routed, else who, why, how, and the cost."""
    old = {
        "agent": "controller",
        "reason": "reconciliation is finance's work",
        "method": "model",
        "model_requests": 1,
        "input_tokens": 420,
        "output_tokens": 12,
        "warnings": ["agents/x.yaml: skipped"],
    }
    routed = RunRequest.model_validate({"run_id": "r", "goal": "g", "routing": old}).routing
    assert routed.model_dump(mode="json") == old
    unrouted = RunRequest.model_validate({"run_id": "r", "goal": "g", "routing": {}}).routing
    assert unrouted == Routing() and unrouted.reason is None and unrouted.model_requests == 0


def test_a_request_survives_its_json_round_trip():
    request = RunRequest(run_id="r", goal="g", agent=AgentProfile.model_validate(OLD_CLERK))
    again = RunRequest.model_validate(request.model_dump(mode="json"))
    assert again == request


def test_journaled_step_results_load_and_store_unchanged():
    journaled = [
        {
            "status": "succeeded",
            "output": {"path": "a.md", "bytes": 3},
            "error": None,
            "attempts": 1,
            "duration_ms": 2.5,
            "verified": True,
            "note": None,
            "gap": None,
        },
        {
            "status": "blocked",
            "output": None,
            "error": "no web search backend is configured",
            "attempts": 1,
            "duration_ms": 0.1,
            "verified": False,
            "note": None,
            "gap": {"kind": "capability", "what": "web search backend", "why": "…", "step": None},
        },
    ]
    for stored in journaled:
        assert StepResult.model_validate(stored).model_dump(mode="json") == stored


def test_the_constructors_make_what_the_dicts_did():
    assert StepResult.blocked("[governance] no").model_dump(exclude_defaults=True) == {
        "status": "blocked",
        "error": "[governance] no",
        "attempts": 0,
    }
    failed = StepResult.failed("child ended partial", attempts=1, output={"child": True})
    assert (failed.status.value, failed.attempts, failed.output) == ("failed", 1, {"child": True})
    assert StepResult.succeeded({"x": 1}).attempts == 1


def test_journaled_model_replies_load_and_store_unchanged():
    """A durable run journals each model reply; they were dicts with these keys."""
    answered = {"text": '{"steps": []}', "input_tokens": 12, "output_tokens": 3, "requests": 1}
    reply = ModelReply.model_validate(answered)
    assert reply.error is None and reply.model_dump(mode="json", exclude_none=True) == answered
    failed = ModelReply.model_validate({"error": "connection refused", "requests": 2})
    assert (failed.error, failed.requests, failed.text) == ("connection refused", 2, "")
