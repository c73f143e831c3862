"""Approvals: a run waits on the store; approvers approve, deny or edit; requests expire;
non-approvers are refused — through the runner with the real gate."""

from __future__ import annotations

import asyncio
import getpass
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from openlam.config import load_settings
from openlam.errors import UserError
from openlam.governance.approvals import (
    APPROVED,
    ApprovalStore,
    Roles,
    auto_decider,
    current_principal,
)
from tests.governance.conftest import Harness

PAY_ONLY = {
    "steps": [
        {
            "id": "s1",
            "action": "pay.transfer",
            "args": {"to": "supplier@acme.example", "amount": 120},
        }
    ]
}
PAY = {
    "steps": [
        {
            "id": "s1",
            "action": "pay.transfer",
            "args": {"to": "supplier@acme.example", "amount": 120},
        },
        {"id": "s2", "action": "notes.write", "args": {"text": "paid"}, "depends_on": ["s1"]},
    ]
}


async def first_pending(store: ApprovalStore, run: asyncio.Task):
    while not (items := store.list(status="pending")):
        if run.done():  # the run ended (or crashed) without asking
            raise AssertionError(f"no approval was requested: {run.result()}")
        await asyncio.sleep(0.01)
    return items[0]


async def test_approved_step_runs(harness: Harness) -> None:
    gov = harness.governance()
    run = asyncio.create_task(harness.run(gov, [PAY], agent={"id": "clerk"}))
    approval = await first_pending(gov.approvals, run)
    assert (approval.action, approval.args["amount"]) == ("pay.transfer", 120)
    assert harness.world.paid == []  # nothing happens while it waits
    gov.approvals.approve(approval.id, "alice", "looks right")
    outcome = await run
    assert outcome.status.value == "completed"
    assert harness.world.paid == [{"to": "supplier@acme.example", "amount": 120}]
    kinds = [r["kind"] for r in gov.audit.records(step_id="s1")]
    assert kinds == ["policy", "approval.requested", "approval.decided", "action", "result"]
    decided = gov.audit.records(kind="approval.decided")[0]
    assert (decided["actor"], decided["body"]["comment"]) == ("alice", "looks right")


async def test_denied_step_blocks_the_run_and_says_so(harness: Harness) -> None:
    gov = harness.governance()
    run = asyncio.create_task(harness.run(gov, [PAY_ONLY]))
    approval = await first_pending(gov.approvals, run)
    gov.approvals.deny(approval.id, "alice", "not this supplier")
    outcome = await run
    assert harness.world.paid == [] and harness.world.notes == []
    assert outcome.status.value == "blocked"
    assert "denied by alice: not this supplier" in outcome.summary


async def test_edit_changes_the_arguments_and_is_recorded(harness: Harness) -> None:
    gov = harness.governance()
    run = asyncio.create_task(harness.run(gov, [PAY]))
    approval = await first_pending(gov.approvals, run)
    gov.approvals.edit(approval.id, "alice", {"amount": 100}, "agreed discount")
    outcome = await run
    assert outcome.status.value == "completed"
    assert harness.world.paid == [{"to": "supplier@acme.example", "amount": 100}]
    decided = gov.audit.records(kind="approval.decided")[0]["body"]
    assert decided["status"] == "edited"
    assert decided["edited_args"]["amount"] == 100 and decided["original_args"]["amount"] == 120
    action = gov.audit.records(kind="action", step_id="s1")[0]["body"]
    assert action["args"]["amount"] == 100


async def test_expired_approval_counts_as_denied(harness: Harness) -> None:
    clock = [1_000_000.0]
    gov = harness.governance(
        clock=lambda: clock[0],
        policies="""
rules:
  - {id: pay-quick, action: pay.transfer, decision: require_approval, expires: 30m}
""",
    )
    run = asyncio.create_task(harness.run(gov, [PAY_ONLY]))
    approval = await first_pending(gov.approvals, run)
    assert approval.expires_at == clock[0] + 1800
    clock[0] += 1801
    outcome = await run
    assert harness.world.paid == []
    assert outcome.status.value == "blocked"
    assert gov.approvals.get(approval.id).status == "expired"
    assert "expired" in outcome.summary
    with pytest.raises(UserError, match="already expired"):
        gov.approvals.approve(approval.id, "alice")


async def test_only_approvers_of_the_department_may_decide(harness: Harness) -> None:
    roles = Roles({"finance": ["bob"], "*": ["alice"]})
    gov = harness.governance(roles=roles)
    run = asyncio.create_task(harness.run(gov, [PAY], agent={"id": "ap", "department": "sales"}))
    approval = await first_pending(gov.approvals, run)
    assert approval.department == "sales"
    with pytest.raises(UserError, match="mallory does not have the approver role for sales"):
        gov.approvals.approve(approval.id, "mallory")
    with pytest.raises(UserError, match="bob does not have the approver role"):
        gov.approvals.approve(approval.id, "bob")  # bob approves finance only
    assert gov.approvals.get(approval.id).status == "pending"
    assert harness.world.paid == []
    gov.approvals.approve(approval.id, "alice")
    assert (await run).status.value == "completed"
    assert roles.can_approve("bob", "finance") and not roles.can_approve("bob", "sales")


async def test_auto_decider_and_idempotent_requests(harness: Harness) -> None:
    gov = harness.governance()
    gov.wait = auto_decider(gov.approvals, APPROVED, principal="ci")
    outcome = await harness.run(gov, [PAY], run_id="r-auto")
    assert outcome.status.value == "completed"
    approval = gov.approvals.list(run_id="r-auto")[0]
    assert approval.decided_by == "system:ci"
    again = gov.approvals.request("r-auto", "s1", "pay.transfer", {}, expires_in=10)
    assert again.id == approval.id and again.status == APPROVED


def write_config(workspace: Path, admin: bool = True) -> None:
    """alice approves everything, bob finance; the OS user running the tests is the
    admin (acting as alice or bob through --as needs that) unless ``admin=False``."""
    admins = f'admins = ["{getpass.getuser()}"]\n' if admin else ""
    (workspace / "openlam.toml").write_text(
        f'[governance]\n{admins}[governance.approvers]\n"*" = ["alice"]\nfinance = ["bob"]\n',
        encoding="utf-8",
    )


async def test_another_process_approves_through_the_cli(harness: Harness) -> None:
    write_config(harness.workspace)
    settings = load_settings(harness.workspace)
    harness.settings = settings
    gov = harness.governance(roles=Roles.from_settings(settings))
    run = asyncio.create_task(harness.run(gov, [PAY]))
    approval = await first_pending(gov.approvals, run)
    env = {**os.environ, "OPENLAM_PRINCIPAL": "mallory"}
    cli = [sys.executable, "-c", "from openlam.cli.main import main; main()", "approvals"]
    refused = await asyncio.to_thread(
        subprocess.run,
        [*cli, "approve", approval.id[:8], "--workspace", str(harness.workspace)],
        env=env,
        capture_output=True,
        text=True,
    )
    assert refused.returncode == 2
    assert "mallory does not have the approver role" in refused.stderr
    done = await asyncio.to_thread(
        subprocess.run,
        [
            *cli,
            "approve",
            approval.id,
            "--as",
            "alice",
            "-m",
            "ok",
            "--workspace",
            str(harness.workspace),
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert (await run).status.value == "completed"
    assert harness.world.paid[0]["amount"] == 120


def test_cli_list_show_deny_and_edit(harness: Harness) -> None:
    from openlam.cli.main import _install, app

    write_config(harness.workspace)
    settings = load_settings(harness.workspace)
    store = ApprovalStore(settings.app_database_url, roles=Roles.from_settings(settings))
    a = store.request(
        "r1",
        "s1",
        "email.send",
        {"to": ["x@y.example"], "subject": "Hi", "body": "hi"},
        expires_in=3600,
        department="finance",
        reason="external",
    )
    b = store.request("r1", "s2", "mail.send", {"to": "x@y.example"}, expires_in=3600)
    _install()
    runner = CliRunner()
    ws = ["--workspace", str(harness.workspace)]
    listed = runner.invoke(app, ["approvals", "list", *ws])
    assert listed.exit_code == 0 and a.id in listed.output and b.id in listed.output
    shown = runner.invoke(app, ["approvals", "show", a.id, *ws])
    assert "x@y.example" in shown.output and "finance" in shown.output
    edited = runner.invoke(
        app, ["approvals", "edit", a.id, "--set", 'to=["boss@acme.example"]', "--as", "bob", *ws]
    )
    assert edited.exit_code == 0, edited.output
    assert store.get(a.id).effective_args == {
        "to": ["boss@acme.example"],
        "subject": "Hi",
        "body": "hi",
    }
    denied = runner.invoke(app, ["approvals", "deny", b.id, "--as", "alice", "-m", "no", *ws])
    assert denied.exit_code == 0
    assert store.get(b.id).status == "denied"
    assert runner.invoke(app, ["approvals", "list", *ws]).output.startswith("No approvals")


def test_principal_resolution(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENLAM_PRINCIPAL", "carol")
    assert current_principal() == "carol"
    assert current_principal("dave") == "dave"
    monkeypatch.delenv("OPENLAM_PRINCIPAL")
    assert current_principal() == os.environ.get("USER", current_principal())


def test_acting_as_someone_else_needs_the_admin_role(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CLI acts as the OS user. A non-admin cannot approve as alice by --as or by
    OPENLAM_PRINCIPAL, and the refusal does not say how one might."""
    from openlam.cli.main import _install, app

    me = getpass.getuser()
    write_config(harness.workspace, admin=False)
    settings = load_settings(harness.workspace)
    store = ApprovalStore(settings.app_database_url, roles=Roles.from_settings(settings))
    a = store.request("r1", "s1", "mail.send", {"to": "x@y.example"}, expires_in=3600)
    _install()
    runner = CliRunner()
    ws = ["--workspace", str(harness.workspace)]
    refusals = [runner.invoke(app, ["approvals", "approve", a.id, "--as", "alice", *ws])]
    monkeypatch.setenv("OPENLAM_PRINCIPAL", "alice")
    refusals.append(runner.invoke(app, ["approvals", "deny", a.id, *ws]))
    monkeypatch.delenv("OPENLAM_PRINCIPAL")
    refusals.append(runner.invoke(app, ["approvals", "approve", a.id, *ws]))  # as myself
    for refused in refusals:
        text = str(refused.exception)
        assert refused.exit_code != 0 and store.get(a.id).status == "pending"
        assert "--as" not in text and "OPENLAM_PRINCIPAL" not in text
    assert f"you are {me}; deciding as alice needs the admin role" in str(refusals[0].exception)
    assert f"{me} does not have the approver role" in str(refusals[2].exception)

    write_config(harness.workspace, admin=True)  # now the OS user is the admin
    done = runner.invoke(app, ["approvals", "approve", a.id, "--as", "alice", *ws])
    assert done.exit_code == 0, done.output
    assert store.get(a.id).decided_by == "alice"


def test_an_edit_is_checked_against_the_actions_schema(harness: Harness) -> None:
    """The documented example (--set to=bob@example.com on email.send, whose ``to`` is a
    list) is refused with the field named; the JSON form is accepted."""
    from openlam.cli.main import _install, app

    write_config(harness.workspace)
    settings = load_settings(harness.workspace)
    store = ApprovalStore(settings.app_database_url, roles=Roles.from_settings(settings))
    a = store.request(
        "r1",
        "s1",
        "email.send",
        {"to": ["x@y.example"], "subject": "Hi", "body": "hi"},
        expires_in=3600,
    )
    _install()
    runner = CliRunner()
    ws = ["--workspace", str(harness.workspace), "--as", "alice"]
    bad = runner.invoke(app, ["approvals", "edit", a.id, "--set", "to=bob@example.com", *ws])
    assert "not valid for email.send" in str(bad.exception)
    assert "to" in str(bad.exception).split("email.send:", 1)[1]
    typo = runner.invoke(app, ["approvals", "edit", a.id, "--set", "too=[]", *ws])
    assert "email.send has no argument 'too'" in str(typo.exception)
    assert store.get(a.id).status == "pending"
    good = runner.invoke(app, ["approvals", "edit", a.id, "--set", 'to=["bob@example.com"]', *ws])
    assert good.exit_code == 0, good.output
    assert store.get(a.id).effective_args["to"] == ["bob@example.com"]
