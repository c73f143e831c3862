"""The governance operations as plain functions of a workspace's settings — what the
CLI calls and what the HTTP server exposes. Each takes ``settings`` first
(:func:`openlam.config.load_settings`); deciding functions take the acting principal
requested (``--as``); a local caller acts as its OS user unless it has the admin role
(see :func:`~openlam.governance.approvals.acting_principal`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from openlam.config import policy_paths
from openlam.governance.approvals import (
    Approval,
    ApprovalStore,
    DecisionListener,
    Roles,
    acting_principal,
)
from openlam.governance.audit import AuditLog, Verification, file_anchor, last_anchor
from openlam.governance.gaps import GapStore, StoredGap
from openlam.governance.policy import PolicySet, load_policies


def audit_log(settings: Any) -> AuditLog:
    """The workspace's audit log, redacting secrets, appending each head to the
    ``[audit] anchor_file`` when one is configured."""
    path = anchor_file(settings)
    return AuditLog(
        settings.app_database_url,
        redact=_redactor(settings),
        anchor=file_anchor(path) if path is not None else None,
    )


def _redactor(settings: Any) -> Callable[[Any], Any] | None:
    """Secret redaction for audit records, from the secrets module when it is installed."""
    import importlib

    try:
        secrets = importlib.import_module("openlam.actions.secrets")
    except ModuleNotFoundError:
        return None
    redactor = secrets.Redactor.for_settings(settings)
    return redactor.value


def anchor_file(settings: Any) -> Path | None:
    """``[audit] anchor_file`` (relative to the workspace), or None."""
    from openlam.errors import UserError

    value = ((getattr(settings, "raw", {}) or {}).get("audit") or {}).get("anchor_file")
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise UserError(
            f"[audit] anchor_file must be a path, got {value!r}",
            'e.g. anchor_file = "/var/backups/openlam-audit-heads.txt"',
        )
    path = Path(value).expanduser()
    return path if path.is_absolute() else Path(settings.workspace) / path


def audit_head(settings: Any) -> str:
    """The log's head as ``SEQ:HASH`` — keep it where the database's writers cannot."""
    seq, digest = audit_log(settings).head()
    return f"{seq}:{digest}"


def approval_store(settings: Any, on_decision: DecisionListener | None = None) -> ApprovalStore:
    """The workspace's approvals (a waiting run sees a decision within a second; at once
    when it runs in this process and ``on_decision`` wakes it)."""
    return ApprovalStore(
        settings.app_database_url,
        roles=Roles.from_settings(settings),
        audit=audit_log(settings),
        on_decision=on_decision,
    )


def list_approvals(
    settings: Any, *, status: str | None = None, run_id: str | None = None
) -> list[Approval]:
    return approval_store(settings).list(status=status, run_id=run_id)


def show_approval(settings: Any, approval_id: str) -> Approval:
    return approval_store(settings).get(approval_id)


def _deciding(
    settings: Any,
    principal: str | None,
    authenticated: bool,
    on_decision: DecisionListener | None = None,
) -> tuple[ApprovalStore, str]:
    """The store and who decides. A local caller decides as its OS user (another
    principal needs the admin role); an ``authenticated`` principal (the server checked
    its token and its approver role) decides as itself. Either way the workspace's
    approvers per department are checked; a workspace that names none lets the local
    user — and, through the server, any principal with the approver role — decide.
    ``on_decision``: see :class:`~openlam.governance.approvals.ApprovalStore`."""
    store = approval_store(settings, on_decision)
    if not authenticated:
        return store, acting_principal(store.roles, principal)
    if principal is None:
        raise ValueError("an authenticated decision needs its principal")
    if not Roles.configured(settings):
        store.roles = Roles(
            {"*": [principal, *store.roles.approvers.get("*", [])]}, store.roles.admins
        )
    return store, principal


def approve(
    settings: Any,
    approval_id: str,
    *,
    principal: str | None = None,
    comment: str = "",
    authenticated: bool = False,
    on_decision: DecisionListener | None = None,
) -> Approval:
    store, who = _deciding(settings, principal, authenticated, on_decision)
    return store.approve(approval_id, who, comment)


def deny(
    settings: Any,
    approval_id: str,
    *,
    principal: str | None = None,
    comment: str = "",
    authenticated: bool = False,
    on_decision: DecisionListener | None = None,
) -> Approval:
    store, who = _deciding(settings, principal, authenticated, on_decision)
    return store.deny(approval_id, who, comment)


def edit(
    settings: Any,
    approval_id: str,
    args: dict[str, Any],
    *,
    principal: str | None = None,
    comment: str = "",
    authenticated: bool = False,
    on_decision: DecisionListener | None = None,
) -> Approval:
    """Approve with changed arguments — only if the action accepts them: an edit that
    would fail validation when the step runs is refused here, naming the field."""
    store, who = _deciding(settings, principal, authenticated, on_decision)
    check_edit(settings, store.get(approval_id), args)
    return store.edit(approval_id, who, args, comment)


def check_edit(settings: Any, approval: Approval, changes: dict[str, Any]) -> None:
    """Raise a UserError unless the approval's arguments with ``changes`` merged over
    them are valid input for its action (checked against the action's schema)."""
    from openlam.actions.registry import load_plugins
    from openlam.errors import UserError

    spec = load_plugins(settings=settings).get(approval.action)
    if spec is None:
        raise UserError(
            f"cannot check an edit of {approval.action}: the action is not installed here",
            "approve or deny the request as it is",
        )
    known = spec.input_schema.get("properties", {})
    unknown = [name for name in changes if known and name not in known]
    if unknown:
        raise UserError(
            f"{approval.action} has no argument {', '.join(map(repr, unknown))}",
            f"its arguments: {', '.join(known)}",
        )
    problems = spec.arg_errors({**approval.args, **changes})
    if problems:
        raise UserError(
            f"the edited arguments are not valid for {approval.action}: " + "; ".join(problems),
            "give a JSON value where the field needs one, e.g. "
            "--set 'to=[\"bob@example.com\"]' for a list",
        )


def verify_audit(settings: Any, expect: str | None = None) -> Verification:
    """Verify the chain; against ``expect`` (``SEQ:HASH``), else against the last head
    in the configured anchor file, if any."""
    path = anchor_file(settings)
    if expect is None and path is not None:
        expect = last_anchor(path)
    return audit_log(settings).verify(expect)


def export_audit(settings: Any, out: TextIO) -> int:
    return audit_log(settings).export(out)


def list_gaps(settings: Any, limit: int | None = None) -> list[StoredGap]:
    return GapStore(settings.app_database_url).list(limit)


def check_policies(settings: Any, files: list[Path] | None = None) -> PolicySet:
    """Load and validate policy files (default: the configured ones); raises PolicyError."""
    return load_policies(files if files else policy_paths(settings))


def explain(settings: Any, run_id: str, step_id: str) -> dict[str, Any]:
    """The policy decision recorded for a step, with the deciding rule as configured now."""
    from openlam.errors import UserError

    log = audit_log(settings)
    decisions = log.records(run_id=run_id, kind="policy", step_id=step_id)
    if not decisions:
        steps = sorted({r["step_id"] for r in log.records(run_id=run_id, kind="policy")})
        raise UserError(
            f"no policy decision recorded for step {step_id} of run {run_id}",
            f"steps with decisions in that run: {', '.join(steps)}"
            if steps
            else "is the run id right? governance records decisions only for "
            "runs that went through the gate",
        )
    decision = decisions[-1]
    body = decision["body"]
    related = [
        r
        for r in log.records(run_id=run_id, step_id=step_id)
        if r["kind"] in ("approval.requested", "approval.decided", "action", "result")
    ]
    rule = None
    try:
        policies = check_policies(settings)
        found = policies.rule(body.get("rule_id", ""))
        if found is not None:
            rule = {
                "id": found.id,
                "effect": found.effect.value,
                "level": found.level,
                "source": found.source,
                "reason": found.reason,
            }
    except UserError:
        rule = None
    return {
        "run_id": run_id,
        "step_id": step_id,
        "recorded": decision,
        "rule_now": rule,
        "then": related,
    }
