"""Deciding an approval from the dashboard: approve, deny, or edit-and-approve.

The server's approver role lets a principal decide. When the workspace names its
approvers (``[governance.approvers]`` or a roles file), those per-department lists
still apply on top; without them — where the CLI lets the machine's own user decide
everything — the server's role is the check. The edit is validated against the
action's input schema exactly as ``openlam approvals edit`` validates it."""

from __future__ import annotations

import json
from typing import Any

from openlam.errors import UserError
from openlam.governance.approvals import APPROVED, DENIED, EDITED, Approval

DECISIONS = {"approve": APPROVED, "deny": DENIED, "edit": EDITED}


def names_approvers(settings: Any) -> bool:
    """Whether the workspace configures who approves (else the server's role decides)."""
    section = (getattr(settings, "raw", {}) or {}).get("governance", {}) or {}
    return bool(section.get("approvers") or section.get("roles"))


def decide(settings: Any, approval_id: str, decision: str, principal: str, *,
           comment: str = "", args_json: str = "") -> Approval:
    from openlam.governance.api import approval_store, check_edit

    status = DECISIONS.get(decision)
    if status is None:
        raise UserError(f"unknown decision {decision!r}", "approve, deny or edit")
    store = approval_store(settings)
    changes: dict[str, Any] | None = None
    if status == EDITED:
        edited = parse_args(args_json)
        approval = store.get(approval_id)
        changes = {k: v for k, v in edited.items() if approval.args.get(k, object()) != v}
        removed = [k for k in approval.args if k not in edited]
        if removed:
            raise UserError(f"an edit cannot remove arguments ({', '.join(removed)})",
                            "change their values instead, or deny the request")
        if not changes:  # nothing changed: it is a plain approval, recorded as one
            status = APPROVED
        else:
            check_edit(settings, approval, changes)
    return store.decide(approval_id, principal, status, args=changes, comment=comment,
                        check_role=names_approvers(settings))


def parse_args(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise UserError(f"the edited arguments are not JSON: {exc}",
                        'write them as a JSON object, e.g. {"to": "bob@example.com"}') from None
    if not isinstance(value, dict):
        raise UserError("the edited arguments must be a JSON object",
                        'e.g. {"to": "bob@example.com"}')
    return value
