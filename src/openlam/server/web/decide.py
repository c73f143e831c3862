"""Deciding an approval from the dashboard: approve, deny, or edit-and-approve, through
the governance API as the server's REST endpoints decide (the principal authenticated,
the workspace's approvers per department still applying). The edit arrives as the
whole argument object from the form; only what changed is the edit."""

from __future__ import annotations

import json
from typing import Any

from openlam.errors import UserError
from openlam.governance.approvals import Approval

DECISIONS = ("approve", "deny", "edit")


def decide(
    settings: Any,
    approval_id: str,
    decision: str,
    principal: str,
    *,
    comment: str = "",
    args_json: str = "",
) -> Approval:
    from openlam.governance import api

    if decision not in DECISIONS:
        raise UserError(f"unknown decision {decision!r}", "approve, deny or edit")
    from openlam.runtime.process import wake_waiting_run

    who = {
        "principal": principal,
        "comment": comment,
        "authenticated": True,
        "on_decision": wake_waiting_run,
    }
    if decision == "deny":
        return api.deny(settings, approval_id, **who)
    if decision == "edit":
        edited = parse_args(args_json)
        asked = api.show_approval(settings, approval_id).args
        removed = [k for k in asked if k not in edited]
        if removed:
            raise UserError(
                f"an edit cannot remove arguments ({', '.join(removed)})",
                "change their values instead, or deny the request",
            )
        changes = {k: v for k, v in edited.items() if k not in asked or asked[k] != v}
        if changes:  # nothing changed: a plain approval, recorded as one
            return api.edit(settings, approval_id, changes, **who)
    return api.approve(settings, approval_id, **who)


def parse_args(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise UserError(
            f"the edited arguments are not JSON: {exc}",
            'write them as a JSON object, e.g. {"to": "bob@example.com"}',
        ) from None
    if not isinstance(value, dict):
        raise UserError(
            "the edited arguments must be a JSON object", 'e.g. {"to": "bob@example.com"}'
        )
    return value
