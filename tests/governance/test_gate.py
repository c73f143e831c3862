"""The gate end to end: every decision is audited and explainable."""

from __future__ import annotations

from typer.testing import CliRunner

from openlam.errors import UserError
from openlam.governance.api import check_policies
from openlam.governance.approvals import DENIED, auto_decider
from tests.governance.conftest import Harness

POLICY = """
rules:
  - id: big-payments
    action: pay.transfer
    when: {args: {amount: {above: 1000}}}
    decision: deny
    reason: payments above 1000 are never automatic
  - id: small-payments
    action: pay.transfer
    decision: allow
"""


async def test_decisions_are_audited_and_explained(harness: Harness) -> None:
    policies = harness.workspace / "policies"
    policies.mkdir()
    (policies / "org.yaml").write_text(POLICY, encoding="utf-8")
    gov = harness.governance(policies=check_policies(harness.settings))
    gov.wait = auto_decider(gov.approvals, DENIED)
    plan = {
        "steps": [
            {"id": "s1", "action": "pay.transfer", "args": {"to": "a@acme.example", "amount": 50}},
            {
                "id": "s2",
                "action": "pay.transfer",
                "args": {"to": "b@acme.example", "amount": 5000},
            },
            {"id": "s3", "action": "files.erase", "args": {"name": "ledger.csv"}},
        ]
    }
    outcome = await harness.run(gov, [plan], run_id="run-explain")
    assert harness.world.paid == [{"to": "a@acme.example", "amount": 50}]
    assert harness.world.erased == []
    assert outcome.status.value == "partial"
    assert gov.audit.verify().ok
    kinds = [r["kind"] for r in gov.audit.records(run_id="run-explain")]
    assert kinds[:2] == ["run.started", "plan"] and kinds[-1] == "run.finished"
    assert kinds.count("policy") == 3 and kinds.count("result") == 3

    from openlam.cli.main import _install, app

    _install()
    runner = CliRunner(env={"COLUMNS": "250"})
    ws = ["--workspace", str(harness.workspace)]
    out = runner.invoke(app, ["policy", "explain", "run-explain", "s2", *ws]).output
    assert "Decision: deny by rule big-payments" in out
    assert "org.yaml:3" in out and "payments above 1000 are never automatic" in out
    out = runner.invoke(app, ["policy", "explain", "run-explain", "s3", *ws]).output
    assert "require_approval by rule default:destructive" in out
    assert "then approval.decided: denied by system:auto" in out
    missing = runner.invoke(app, ["policy", "explain", "run-explain", "s9", *ws])
    assert isinstance(missing.exception, UserError)  # main() prints it as one clear line
    assert "steps with decisions in that run: s1, s2, s3" in str(missing.exception)
