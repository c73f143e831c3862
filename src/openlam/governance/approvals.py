"""Approvals: a step that needs a person's yes waits for one — seconds or days.

The store (``gov_approvals`` in the project database) holds requests and decisions and is
shared by every process: the run that waits, the CLI (``openlam approvals``), the server.
Decisions are ``approved``, ``denied``, ``edited`` (approved with changed arguments, which
are recorded) and ``expired`` (nobody decided in time: it counts as a denial). Only a
principal with the approver role for the step's department may decide; every request and
decision is written to the audit log.

How a run waits is pluggable — a :data:`WaitForDecision` the runtime supplies:

* non-durable runs (tests, ``Runner`` used directly): :func:`polling_wait` re-reads the
  store every ``interval`` seconds until the approval is decided or expires;
* benchmarks and unattended pipelines: :func:`auto_decider` decides at once as a system
  principal (e.g. deny everything), recorded like any other decision;
* durable runs (DBOS): the wait reads the approval in a DBOS step and sleeps in
  ``DBOS.recv`` on topic ``approval:<id>``, re-reading at least every minute; a
  decision listener sends that topic to the run's workflow to wake it at once.
  :mod:`openlam.governance.durable` implements exactly this (``dbos_wait``,
  ``dbos_notifier``). The ``store.get`` reads run as DBOS steps, so a replayed workflow
  sees the same answers; ``ApprovalStore.request`` is idempotent per (run, step), so a
  replay never files a second request. The notifier (registered by
  ``openlam.governance.api`` whenever the workspace has a DBOS system database) only
  shortens the wait; without it the run notices within one recv timeout.
"""

from __future__ import annotations

import asyncio
import getpass
import hashlib
import json
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import insert, select, update

from openlam.errors import UserError, not_utf8
from openlam.governance.audit import AuditLog
from openlam.governance.db import approvals as table
from openlam.governance.db import engine_for

PENDING, APPROVED, DENIED, EDITED, EXPIRED = "pending", "approved", "denied", "edited", "expired"
GRANTED = (APPROVED, EDITED)
PRINCIPAL_ENV = "OPENLAM_PRINCIPAL"


def current_principal(explicit: str | None = None) -> str:
    """Who is asking to act: ``--as NAME``, else ``OPENLAM_PRINCIPAL``, else the OS user
    (unchecked — deciding goes through :func:`acting_principal`)."""
    if explicit:
        return explicit
    return os.environ.get(PRINCIPAL_ENV) or _os_user()


def acting_principal(roles: Roles, requested: str | None = None) -> str:
    """The principal a local decision is made as: the OS user. Acting as someone else
    (``--as`` or ``OPENLAM_PRINCIPAL``) needs the admin role; the refusal says what is
    needed, not how to get around it."""
    me = _os_user()
    wanted = current_principal(requested)
    if wanted == me or me in roles.admins:
        return wanted
    raise UserError(
        f"you are {me}; deciding as {wanted} needs the admin role",
        "decide as yourself, or ask an approver to decide",
    )


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


@dataclass
class Roles:
    """``approvers``: department (or ``*`` for every department) → principals."""

    approvers: dict[str, list[str]] = field(default_factory=dict)
    admins: list[str] = field(default_factory=list)
    """OS users who may act as another principal (``--as``)."""

    def can_approve(self, principal: str, department: str) -> bool:
        return principal in self.approvers.get(
            department or "", []
        ) or principal in self.approvers.get("*", [])

    def approvers_for(self, department: str) -> list[str]:
        return sorted({*self.approvers.get(department or "", []), *self.approvers.get("*", [])})

    @staticmethod
    def configured(settings: Any) -> bool:
        """Whether the workspace names its approvers (else the single-user default)."""
        section = (getattr(settings, "raw", {}) or {}).get("governance", {})
        return section.get("approvers") is not None or bool(section.get("roles"))

    @classmethod
    def from_settings(cls, settings: Any) -> Roles:
        """``[governance.approvers]`` and ``[governance] admins`` in openlam.toml, or the
        YAML file named by ``[governance] roles`` (``approvers: {finance: [bob], "*":
        [alice]}``, ``admins: [root]``). With neither, the local OS user approves
        everything and is the admin (a single-user install works)."""
        section = (getattr(settings, "raw", {}) or {}).get("governance", {})
        approvers: Any = section.get("approvers")
        admins: Any = section.get("admins")
        source = "[governance.approvers] in openlam.toml"
        if approvers is None and section.get("roles"):
            if not isinstance(section["roles"], str):
                raise UserError(
                    f"[governance] roles must be the path of a YAML file, got {section['roles']!r}",
                    'e.g. roles = "roles.yaml" in openlam.toml',
                )
            path = Path(section["roles"])
            path = path if path.is_absolute() else Path(settings.workspace) / path
            try:
                data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            except UnicodeDecodeError as exc:
                raise not_utf8(path, exc) from None
            except (OSError, yaml.YAMLError) as exc:
                raise UserError(
                    f"cannot read roles file {path}: {exc}",
                    "fix [governance] roles in openlam.toml",
                ) from None
            approvers, source = (
                data.get("approvers") if isinstance(data, dict) else None,
                str(path),
            )
            if admins is None and isinstance(data, dict):
                admins = data.get("admins")
        if admins is not None and not (
            isinstance(admins, list) and all(isinstance(a, str) for a in admins)
        ):
            raise UserError(f"admins in {source} must be a list of names", 'e.g. admins = ["root"]')
        if approvers is None:
            return cls({"*": [_os_user()]}, admins if admins is not None else [_os_user()])
        if not isinstance(approvers, Mapping) or not all(
            isinstance(v, list) and all(isinstance(p, str) for p in v) for v in approvers.values()
        ):
            raise UserError(
                f"approvers in {source} must map departments to lists of names",
                'e.g. approvers = { "*" = ["alice"], finance = ["bob"] }',
            )
        return cls({str(k): list(v) for k, v in approvers.items()}, list(admins or []))


@dataclass
class Approval:
    id: str
    run_id: str
    step_id: str
    action: str
    args: dict[str, Any]
    status: str
    requested_at: float
    expires_at: float
    risk: str = ""
    agent: str = ""
    department: str = ""
    goal: str = ""
    reason: str = ""
    rule_id: str = ""
    decided_at: float | None = None
    decided_by: str | None = None
    comment: str | None = None
    edited_args: dict[str, Any] | None = None

    @property
    def granted(self) -> bool:
        return self.status in GRANTED

    @property
    def effective_args(self) -> dict[str, Any]:
        return self.edited_args if self.edited_args is not None else self.args

    def seconds_left(self, now: float | None = None) -> float:
        return max(0.0, self.expires_at - (time.time() if now is None else now))

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Approval:
        data = dict(row)
        data["args"] = json.loads(data["args"])
        data["edited_args"] = json.loads(data["edited_args"]) if data["edited_args"] else None
        return cls(**data)


WaitForDecision = Callable[[Approval], Awaitable[Approval]]
DecisionListener = Callable[[Approval], None]
"""Called after every decision (and expiry) made through a store, e.g. to wake the run
waiting for it in this process (:func:`openlam.runtime.process.wake_waiting_run`)."""


def approval_id(run_id: str, step_id: str) -> str:
    return "ap-" + hashlib.sha256(f"{run_id}\0{step_id}".encode()).hexdigest()[:12]


class ApprovalStore:
    def __init__(
        self,
        url: str,
        *,
        roles: Roles | None = None,
        audit: AuditLog | None = None,
        clock: Callable[[], float] = time.time,
        on_decision: DecisionListener | None = None,
    ) -> None:
        self.engine = engine_for(url)
        self.roles = roles or Roles()
        self.audit = audit
        self.clock = clock
        self.on_decision = on_decision

    # -- requests ------------------------------------------------------------------

    def request(
        self,
        run_id: str,
        step_id: str,
        action: str,
        args: dict[str, Any],
        *,
        expires_in: float,
        risk: str = "",
        agent: str = "",
        department: str = "",
        goal: str = "",
        reason: str = "",
        rule_id: str = "",
    ) -> Approval:
        """File a request (idempotent per run and step: a replay returns the first)."""
        ident = approval_id(run_id, step_id)
        existing = self._row(ident)
        if existing is not None:
            return existing
        now = self.clock()
        row = {
            "id": ident,
            "run_id": run_id,
            "step_id": step_id,
            "action": action,
            "risk": risk,
            "agent": agent,
            "department": department,
            "goal": goal,
            "args": json.dumps(args, default=str),
            "reason": reason,
            "rule_id": rule_id,
            "status": PENDING,
            "requested_at": now,
            "expires_at": now + expires_in,
        }
        with self.engine.begin() as conn:
            conn.execute(insert(table).values(**row))
        approval = Approval.from_row(
            {**row, "decided_at": None, "decided_by": None, "comment": None, "edited_args": None}
        )
        if self.audit:
            self.audit.append(
                "approval.requested",
                run_id=run_id,
                step_id=step_id,
                actor="governance",
                key=f"approval.requested:{step_id}",
                approval=ident,
                action=action,
                args=args,
                reason=reason,
                rule_id=rule_id,
                expires_at=approval.expires_at,
                approvers=self.roles.approvers_for(department),
            )
        return approval

    # -- reading -------------------------------------------------------------------

    def _row(self, ident: str) -> Approval | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(table).where(table.c.id == ident)).first()
        return Approval.from_row(dict(row._mapping)) if row else None

    def get(self, ident: str) -> Approval:
        """The approval with this id (or unique prefix), expired first if it is due."""
        approval = self._row(ident)
        if approval is None:
            with self.engine.connect() as conn:
                rows = conn.execute(
                    select(table).where(table.c.id.startswith(ident, autoescape=True))
                ).fetchall()
            if len(rows) != 1:
                raise UserError(
                    f"no approval {ident}"
                    if not rows
                    else f"{ident} matches {len(rows)} approvals",
                    "see `openlam approvals list` for the ids",
                )
            approval = Approval.from_row(dict(rows[0]._mapping))
        if approval.status == PENDING and approval.expires_at <= self.clock():
            self._expire(approval)
            approval = self._row(approval.id) or approval
        return approval

    def list(self, *, status: str | None = None, run_id: str | None = None) -> list[Approval]:
        self.expire_due()
        query = select(table).order_by(table.c.requested_at)
        if status:
            query = query.where(table.c.status == status)
        if run_id:
            query = query.where(table.c.run_id == run_id)
        with self.engine.connect() as conn:
            return [Approval.from_row(dict(r._mapping)) for r in conn.execute(query)]

    def expire_due(self) -> list[Approval]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(table).where(table.c.status == PENDING, table.c.expires_at <= self.clock())
            ).fetchall()
        due = [Approval.from_row(dict(r._mapping)) for r in rows]
        for approval in due:
            self._expire(approval)
        return due

    # -- deciding ------------------------------------------------------------------

    def approve(self, ident: str, principal: str, comment: str = "") -> Approval:
        return self.decide(ident, principal, APPROVED, comment=comment)

    def deny(self, ident: str, principal: str, comment: str = "") -> Approval:
        return self.decide(ident, principal, DENIED, comment=comment)

    def edit(self, ident: str, principal: str, args: dict[str, Any], comment: str = "") -> Approval:
        """Approve with changed arguments: ``args`` are merged over the requested ones."""
        return self.decide(ident, principal, EDITED, args=args, comment=comment)

    def decide(
        self,
        ident: str,
        principal: str,
        status: str,
        *,
        args: dict[str, Any] | None = None,
        comment: str = "",
        check_role: bool = True,
    ) -> Approval:
        approval = self.get(ident)
        if approval.status != PENDING:
            raise UserError(
                f"approval {approval.id} is already {approval.status}"
                + (f" by {approval.decided_by}" if approval.decided_by else ""),
                "only pending approvals can be decided",
            )
        if check_role and not self.roles.can_approve(principal, approval.department):
            where = approval.department or "this workspace"
            who = ", ".join(self.roles.approvers_for(approval.department)) or "none configured"
            raise UserError(
                f"{principal} does not have the approver role for {where}",
                f"approvers: {who}; ask one of them to decide",
            )
        edited = {**approval.args, **args} if status == EDITED and args is not None else None
        values: dict[str, Any] = {
            "status": status,
            "decided_at": self.clock(),
            "decided_by": principal,
            "comment": comment or None,
            "edited_args": json.dumps(edited) if edited is not None else None,
        }
        with self.engine.begin() as conn:
            changed = conn.execute(
                update(table)
                .where(table.c.id == approval.id, table.c.status == PENDING)
                .values(**values)
            ).rowcount
        if changed != 1:  # someone else decided between our read and write
            current = self.get(approval.id)
            raise UserError(
                f"approval {approval.id} is already {current.status}",
                "only pending approvals can be decided",
            )
        decided = self.get(approval.id)
        self._record(decided, principal)
        return decided

    def _expire(self, approval: Approval) -> None:
        with self.engine.begin() as conn:
            changed = conn.execute(
                update(table)
                .where(table.c.id == approval.id, table.c.status == PENDING)
                .values(
                    status=EXPIRED,
                    decided_at=self.clock(),
                    decided_by="expiry",
                    comment="nobody decided before it expired",
                )
            ).rowcount
        if changed == 1:
            expired = self._row(approval.id)
            if expired is not None:
                self._record(expired, "expiry")

    def _record(self, approval: Approval, principal: str) -> None:
        if self.audit:
            self.audit.append(
                "approval.decided",
                run_id=approval.run_id,
                step_id=approval.step_id,
                actor=principal,
                key=f"approval.decided:{approval.step_id}",
                approval=approval.id,
                status=approval.status,
                comment=approval.comment,
                edited_args=approval.edited_args,
                original_args=approval.args if approval.edited_args else None,
            )
        if self.on_decision is not None:
            try:
                self.on_decision(approval)
            except Exception:  # a listener only shortens a wait; never break a decision
                import logging

                logging.getLogger(__name__).exception("approval listener failed")


# -- how a run waits -----------------------------------------------------------------


def polling_wait(store: ApprovalStore, interval: float = 1.0) -> WaitForDecision:
    """Re-read the store until the approval is decided or has expired (non-durable)."""

    async def wait(approval: Approval) -> Approval:
        while True:
            current = await asyncio.to_thread(store.get, approval.id)
            if current.status != PENDING:
                return current
            await asyncio.sleep(min(interval, max(current.seconds_left(store.clock()), 0.01)))

    return wait


def auto_decider(
    store: ApprovalStore,
    status: str = DENIED,
    principal: str = "auto",
    comment: str = "decided automatically",
) -> WaitForDecision:
    """Decide every request at once as a system principal (benchmarks, unattended runs)."""
    if status not in (APPROVED, DENIED):
        raise ValueError("auto_decider approves or denies")

    async def wait(approval: Approval) -> Approval:
        current = store.get(approval.id)
        if current.status != PENDING:
            return current
        return store.decide(
            approval.id, f"system:{principal}", status, comment=comment, check_role=False
        )

    return wait
