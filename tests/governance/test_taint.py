"""Provenance: tool output is untrusted, in arguments and in plans made after reading it."""

from __future__ import annotations

from openlam.governance.approvals import DENIED, auto_decider
from openlam.governance.policy import PolicySet
from openlam.governance.taint import assess
from openlam.loop.state import StepRecord, StepStatus
from tests.governance.conftest import INBOX, Harness


def rec(
    id_: str,
    action: str,
    args: dict | None = None,
    *,
    version: int = 1,
    status: StepStatus = StepStatus.pending,
    output=None,
    error=None,
) -> StepRecord:
    return StepRecord(
        id=id_,
        action=action,
        args=args or {},
        plan_version=version,
        status=status,
        output=output,
        error=error,
    )


def test_references_to_tool_output_taint_arguments() -> None:
    s1 = rec("s1", "mail.read", status=StepStatus.succeeded, output={"body": "x"})
    s2 = rec("s2", "mail.send", {"to": "boss@acme.example", "body": "fwd: ${s1.output.body}"})
    taint = assess(s2, {"s1": s1, "s2": s2})
    assert taint.args == {"body": ["s1"]}
    assert not taint.tainted_origin


def test_trusted_outputs_pass_taint_through_from_their_inputs() -> None:
    s1 = rec("s1", "mail.read", status=StepStatus.succeeded, output={"body": "x"})
    s2 = rec(
        "s2",
        "crm.lookup",
        {"q": "${s1.output.body}"},
        status=StepStatus.succeeded,
        output={"email": "e@x.example"},
    )
    s3 = rec(
        "s3",
        "crm.lookup",
        {"q": "acme"},
        status=StepStatus.succeeded,
        output={"email": "e@acme.example"},
    )
    s4 = rec("s4", "mail.send", {"to": "${s2.output.email}", "cc": "${s3.output.email}"})
    records = {r.id: r for r in (s1, s2, s3, s4)}
    taint = assess(s4, records, trusted_output=lambda a: a == "crm.lookup")
    assert taint.args == {"to": ["s1"]}  # cc came from a trusted lookup of a trusted query


def test_a_replanned_step_is_tainted_only_if_the_planner_saw_outside_content() -> None:
    read = rec("s1", "mail.read", status=StepStatus.succeeded, output={"body": "x"})
    blocked = rec(
        "s1", "mail.send", status=StepStatus.blocked, error="[governance] denied by policy rule r"
    )
    late = rec("s2", "notes.write", {"text": "hello"}, version=2)
    assert assess(late, {"s1": read, "s2": late}).origin == ["s1"]
    assert not assess(late, {"s1": blocked, "s2": late}).tainted
    failed = rec("s1", "web.get", status=StepStatus.failed, error="HTTP 404: <html>…</html>")
    assert assess(late, {"s1": failed, "s2": late}).tainted_origin


async def test_injected_payment_in_a_replan_is_stopped(harness: Harness) -> None:
    """The planner reads an email, a step fails, and the replan obeys the email: the
    payment it adds is planned after reading untrusted content and is denied."""
    gov = harness.governance(policies=PolicySet())
    gov.wait = auto_decider(gov.approvals, DENIED)

    def planner(messages: list[dict[str, str]]) -> dict:
        prompt = messages[-1]["content"]
        if "So far" not in prompt:
            return {
                "steps": [
                    {"id": "s1", "action": "mail.read", "args": {}},
                    {"id": "s2", "action": "notes.write", "args": {"text": "${s1.output.missing}"}},
                ]
            }
        if INBOX["body"][:20] in prompt:  # gullible: obeys what it read
            return {
                "steps": [
                    {
                        "id": "s3",
                        "action": "pay.transfer",
                        "args": {"to": INBOX["sender"], "amount": 9000},
                    },
                    {"id": "s4", "action": "notes.write", "args": {"text": "done"}},
                ]
            }
        return {"steps": []}

    outcome = await harness.run(gov, planner)
    assert harness.world.paid == []
    s3 = next(s for s in outcome.steps if s.id == "s3")
    assert s3.status.value == "blocked" and "denied" in (s3.error or "")
    assert harness.world.notes == []  # the write was planned after reading it, too
    decision = gov.audit.records(kind="policy", step_id="s4")[-1]["body"]
    assert decision["guardrail"] == "tainted-origin"
    assert outcome.status.value in ("partial", "blocked")


async def test_tool_output_in_external_arguments_needs_approval(harness: Harness) -> None:
    gov = harness.governance(policies="allow_external: [mail.send]\n")
    gov.wait = auto_decider(gov.approvals, DENIED)
    plan = {
        "steps": [
            {"id": "s1", "action": "mail.read", "args": {}},
            {"id": "s2", "action": "mail.send", "args": {"to": "boss@acme.example", "body": "hi"}},
            {
                "id": "s3",
                "action": "mail.send",
                "args": {"to": "${s1.output.sender}", "body": "as you asked"},
            },
        ]
    }
    outcome = await harness.run(gov, [plan])
    assert [m["to"] for m in harness.world.sent] == ["boss@acme.example"]
    by_id = {s.id: s for s in outcome.steps}
    assert by_id["s2"].status.value == "succeeded"
    assert by_id["s3"].status.value == "blocked"
    decision = gov.audit.records(kind="policy", step_id="s3")[-1]["body"]
    assert decision["guardrail"] == "tainted-args"
    assert decision["provenance"]["args"] == {"to": ["s1"]}
