"""The governance gate: policy, provenance, budgets, rate limits, approvals and audit
combined into the one hook the runner calls before every action.

Wiring (the runtime does this once per process)::

    gov = build_gate(settings, wait=...)          # wait: see approvals.py
    env = RunEnv(..., gate=gov,                   # Governance is a Gate
                 emit=gov.audit_events(rt.emit),  # plans, results, run start/finish → audit
                 call_model=gov.govern_model(request, call_model),  # budget before a model call
                 learn_hooks=[gov.learn_hook])    # capability gaps + final usage

For one step the gate, in order: records the run's model usage so far; blocks if a
budget or the action's rate limit is exhausted; works out the step's provenance; asks
the policies (the deciding rule and the reason go to the audit log, which
``openlam policy explain RUN STEP`` reads); on ``deny`` blocks; on
``require_approval`` files a request and waits for the decision (approved, edited — the
args are changed in place — denied or expired); finally counts the action and audits
the arguments it will run with. A stopped step comes back ``blocked`` with an error
starting ``[governance]`` and a gap saying what a person would have to do, so the run
ends ``blocked`` or ``partial`` and says why.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from openlam.actions.spec import Risk
from openlam.config import policy_paths
from openlam.governance.approvals import (
    ApprovalStore,
    DecisionListener,
    Roles,
    WaitForDecision,
    polling_wait,
)
from openlam.governance.audit import AuditLog, entry
from openlam.governance.budget import BudgetConfig, Budgets
from openlam.governance.gaps import GapStore
from openlam.governance.policy import (
    Decision,
    Effect,
    PolicySet,
    Query,
    load_policies,
)
from openlam.governance.taint import GOVERNANCE_MARK, Taint, assess
from openlam.loop.events import Event, PlanMade, RunFinished, RunStarted, StepFinished
from openlam.loop.plan import ModelCall, ModelReply
from openlam.loop.state import SPECIAL_ACTIONS, Gap, GapKind, Outcome, StepRecord, StepResult

if TYPE_CHECKING:
    from openlam.config import Settings
    from openlam.loop.runner import Runner, RunRequest


class Governance:
    """A :data:`~openlam.loop.runner.Gate` (call it) with the stores it uses."""

    def __init__(
        self,
        *,
        policies: PolicySet,
        audit: AuditLog,
        approvals: ApprovalStore,
        budgets: Budgets,
        gaps: GapStore,
        wait: WaitForDecision,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.policies = policies
        self.audit = audit
        self.approvals = approvals
        self.budgets = budgets
        self.gaps = gaps
        self.wait = wait
        self.clock = clock
        # Without a budget or rate limit, actions are counted here and recorded once per
        # run (learn_hook) instead of a database row per action.
        self._unrecorded_actions: Counter[str] = Counter()
        self._gated: dict[str, set[str]] = {}  # run → steps this process has gated
        self._fresh: set[str] = set()  # runs started in this process (not resumed)

    # -- the gate ------------------------------------------------------------------

    async def __call__(
        self, runner: Runner, record: StepRecord, args: dict[str, Any]
    ) -> StepResult | None:
        req = runner.request
        run_id, step = req.run_id, record.id
        agent, department = req.agent.id, req.agent.department
        spec = runner.env.registry.get(record.action)
        special = record.action in SPECIAL_ACTIONS or record.action in runner.env.specials
        # A special step (delegate, ask_human…) has no effect of its own: what a child run
        # does is gated in the child, which inherits this step's taint. A rule naming the
        # special action (``action: delegate``) still decides about it.
        risk = spec.risk if spec is not None else Risk.read if special else Risk.destructive
        decided: list[dict[str, Any]] = []
        limited = self.budgets.config.limits_anything()
        replayed = self._replay(runner, record, args)
        if isinstance(replayed, Decision):
            decision = replayed
        elif replayed is not False:
            if replayed is None and not limited:  # it ran, before a crash: still counted
                self._unrecorded_actions[run_id] += 1
            return replayed
        else:
            stopped = self._check_budgets(runner, record, agent, department)
            if stopped is not None:
                return stopped
            taint = assess(
                record, runner.state.records, self.policies.trusted_output, req.tainted_by
            )
            record.tainted = bool(taint.sources or taint.goal)  # e.g. a note keeps it
            decision = self.policies.decide(
                Query(
                    action=record.action,
                    risk=risk,
                    args=args,
                    agent=agent,
                    department=department,
                    tainted_origin=taint.tainted_origin,
                    tainted_args=taint.tainted_args,
                    egress=bool(getattr(spec, "egress", False)),
                    now=datetime.fromtimestamp(self.clock(), UTC),
                )
            )
            policy = entry(
                "policy",
                run_id=run_id,
                step_id=step,
                actor="policy",
                key=f"policy:{step}",
                action=record.action,
                risk=risk.value,
                args=dict(args),
                plan_version=record.plan_version,
                provenance=taint.to_dict(),
                provenance_text=taint.describe(),
                **decision.to_dict(),
            )
            if decision.effect is Effect.allow:  # written with the action, in one go
                decided.append(policy)
            else:  # on record before anyone waits or the step stops
                self.audit.append_many([policy])
        approval_id = None
        if decision.effect is Effect.deny:
            return self._stop(
                runner,
                record,
                None,
                f"denied by policy rule {decision.rule_id}: {decision.reason}",
                f"permission to run {record.action}",
            )
        if decision.effect is Effect.require_approval:
            approval = self.approvals.request(
                run_id,
                step,
                record.action,
                args,
                expires_in=decision.expires_in,
                risk=risk.value,
                agent=agent,
                department=department,
                goal=req.goal,
                reason=decision.reason,
                rule_id=decision.rule_id,
            )
            runner.emit(
                "approval.requested",
                step=step,
                approval=approval.id,
                action=record.action,
                reason=decision.reason,
            )
            approval = await self.wait(approval)
            runner.emit(
                "approval.decided",
                step=step,
                approval=approval.id,
                status=approval.status,
                by=approval.decided_by,
            )
            if not approval.granted:
                who = f" by {approval.decided_by}" if approval.status != "expired" else ""
                why = f": {approval.comment}" if approval.comment else ""
                return self._stop(
                    runner,
                    record,
                    None,
                    f"approval {approval.id} {approval.status}{who}{why} "
                    f"(asked because {decision.reason})",
                    f"approval to run {record.action}",
                    audit=False,
                )
            approval_id = approval.id
            # The wait may have been long and other steps of the tree ran meanwhile: the
            # budget checked before asking must still hold now.
            stopped = self._check_budgets(runner, record, agent, department)
            if stopped is not None:
                return stopped
            if approval.edited_args is not None:
                args.clear()
                args.update(approval.edited_args)
        if limited:
            self.budgets.record_action(
                run_id, agent, department, record.action, key=f"{run_id}:{step}"
            )
        else:
            self._unrecorded_actions[run_id] += 1
        self.audit.append_many(
            [
                *decided,
                entry(
                    "action",
                    run_id=run_id,
                    step_id=step,
                    actor=agent,
                    key=f"action:{step}",
                    action=record.action,
                    risk=risk.value,
                    args=args,
                    approval=approval_id,
                    rule_id=decision.rule_id,
                ),
            ]
        )
        return None

    def _check_budgets(
        self, runner: Runner, record: StepRecord, agent: str, department: str
    ) -> StepResult | None:
        if not self.budgets.config.limits_anything():
            return None  # nothing to check: usage is recorded when the run ends
        req, usage = runner.request, runner.state.usage
        self.budgets.sync_model_usage(
            req.run_id,
            agent,
            department,
            req.model,
            usage.model_requests,
            usage.input_tokens,
            usage.output_tokens,
        )
        if (
            over := self.budgets.exceeded(
                req.run_id, agent, department, root_id=req.root_id or req.run_id
            )
        ) is not None:
            return self._stop(runner, record, "budget", over, f"more budget ({over.split(':')[0]})")
        if (limited := self.budgets.rate_limited(record.action)) is not None:
            return self._stop(
                runner,
                record,
                "rate_limit",
                limited,
                f"a later retry of {record.action} (rate limit)",
            )
        return None

    def _replay(
        self, runner: Runner, record: StepRecord, args: dict[str, Any]
    ) -> StepResult | Decision | Literal[False] | None:
        """A durable run replayed after a crash asks again about steps already decided:
        answer as the first time — usage, clocks and policy files may have changed since,
        and the replay must take the same path. Returns the earlier result (None: it ran),
        the earlier decision to carry on from (it was waiting for an approval), or False
        when the step was never decided."""
        gated = self._gated.setdefault(runner.request.run_id, set())
        if not runner.env.resumed:
            self._fresh.add(runner.request.run_id)
        if not runner.env.resumed and record.id not in gated:
            gated.add(record.id)  # a run this process started: nothing decided before
            return False
        earlier = {
            r["kind"]: r
            for r in self.audit.records(run_id=runner.request.run_id, step_id=record.id)
        }
        if "action" in earlier:
            args.clear()
            args.update(earlier["action"]["body"]["args"])  # as approved (or edited)
            return None
        for kind in ("budget", "rate_limit"):
            if kind in earlier:
                why = earlier[kind]["body"]["reason"]
                return self._stop(runner, record, None, why, f"more budget or time ({kind})")
        if "policy" not in earlier:
            return False
        body = earlier["policy"]["body"]
        return Decision(
            Effect(body["effect"]),
            body["rule_id"],
            body["reason"],
            body.get("source", ""),
            body.get("guardrail"),
            expires_in=float(body.get("expires_in", 0) or 0),
        )

    def _stop(
        self,
        runner: Runner,
        record: StepRecord,
        kind: str | None,
        why: str,
        needs: str,
        audit: bool = True,
    ) -> StepResult:
        if audit and kind is not None:
            self.audit.append(
                kind,
                run_id=runner.request.run_id,
                step_id=record.id,
                actor="governance",
                key=f"{kind}:{record.id}",
                action=record.action,
                reason=why,
            )
        runner.state.gaps.append(Gap(kind=GapKind.human, what=needs, why=why, step=record.id))
        return StepResult.blocked(f"{GOVERNANCE_MARK} {why}")

    # -- around the gate -----------------------------------------------------------

    def audit_events(
        self, inner: Callable[[Event], None] = lambda _e: None
    ) -> Callable[[Event], None]:
        """An ``emit`` that writes plans, step results and run start/finish to the audit
        log, then passes every event on to ``inner``. Plans, results and a run's start
        decide nothing: they are deferred to the next record's transaction (a step's
        policy decision, before it runs) or the run's end, saving a commit each."""

        def emit(event: Event) -> None:
            run_id = event.run_id
            if isinstance(event, PlanMade):
                self.audit.defer(
                    "plan",
                    run_id=run_id,
                    actor="planner",
                    key=f"plan:{event.version}",
                    version=event.version,
                    steps=event.steps,
                )
            elif isinstance(event, StepFinished):
                self.audit.defer(
                    "result",
                    run_id=run_id,
                    step_id=event.step,
                    actor="runtime",
                    key=f"result:{event.step}",
                    action=event.action,
                    status=event.status,
                    error=event.error,
                )
            elif isinstance(event, RunStarted | RunFinished):
                kind = event.kind
                write = self.audit.append if kind == "run.finished" else self.audit.defer
                write(
                    kind,
                    run_id=run_id,
                    actor=event.agent if isinstance(event, RunStarted) else "",
                    key=kind,
                    **event.model_dump(exclude={"kind", "run_id"}),
                )
            inner(event)

        return emit

    def govern_model(self, request: RunRequest, call_model: ModelCall) -> ModelCall:
        """Wrap a run's model call: refuse it when a budget is exhausted, count it.
        Without any budget the call is left as it is (its usage is recorded at the end)."""
        if not self.budgets.config.limits_anything():
            return call_model
        agent, department = request.agent.id, request.agent.department
        calls = 0

        async def call(messages: list[dict[str, str]], schema: dict[str, Any]) -> ModelReply:
            nonlocal calls
            calls += 1
            key = f"{request.run_id}:model:{calls}"
            # A replayed durable run re-asks calls it made before: they are checkpointed,
            # already counted, and must not be refused now.
            if not self.budgets.recorded(key):
                over = self.budgets.exceeded(
                    request.run_id,
                    agent,
                    department,
                    adding_action=False,
                    adding_model_request=True,
                    root_id=request.root_id or request.run_id,
                )
                if over is not None:
                    self.audit.append(
                        "budget",
                        run_id=request.run_id,
                        actor="governance",
                        key=f"budget:model:{calls}",
                        reason=over,
                    )
                    return ModelReply(error=f"{GOVERNANCE_MARK} {over}", requests=0)  # not sent
            # Under a model-request budget the request is counted as it is sent, before
            # the await: concurrent runs of one tree cannot all take the last one.
            reserve = self.budgets.limits("model_requests")
            if reserve:
                self.budgets.record_model_call(
                    request.run_id, agent, department, request.model, 0, 0, key=key
                )
            reply = await call_model(messages, schema)
            tokens = reply.input_tokens, reply.output_tokens
            if reserve:
                self.budgets.record_model_tokens(
                    request.run_id, agent, department, request.model, *tokens, key=key
                )
            else:
                self.budgets.record_model_call(
                    request.run_id, agent, department, request.model, *tokens, key=key
                )
            return reply

        return call

    async def learn_hook(self, outcome: Outcome, experience: dict[str, Any]) -> None:
        """Store the run's capability gaps and its final model usage."""
        self.gaps.record_outcome(outcome)
        request = experience.get("request", {}) if isinstance(experience, dict) else {}
        agent = request.get("agent", {}) if isinstance(request, dict) else {}
        u = outcome.usage
        department = str(agent.get("department", "") or "")
        self._gated.pop(outcome.run_id, None)
        fresh = outcome.run_id in self._fresh
        self._fresh.discard(outcome.run_id)
        if fresh and not self.budgets.config.limits_anything():
            # Started here, no budget: nothing of it is recorded yet. One keyed row.
            self.budgets.record_run_usage(
                outcome.run_id,
                outcome.agent,
                department,
                outcome.model,
                u.model_requests,
                u.input_tokens,
                u.output_tokens,
                self._unrecorded_actions.pop(outcome.run_id, 0),
                delegated=any(s.action == "delegate" for s in outcome.steps),
            )
            return
        self.budgets.sync_model_usage(
            outcome.run_id,
            outcome.agent,
            department,
            outcome.model,
            u.model_requests,
            u.input_tokens,
            u.output_tokens,
        )
        if actions := self._unrecorded_actions.pop(outcome.run_id, 0):
            self.budgets.record_action(
                outcome.run_id,
                outcome.agent,
                department,
                "*",
                key=f"{outcome.run_id}:actions",
                count=actions,
            )


def build_gate(
    settings: Settings,
    *,
    wait: WaitForDecision | None = None,
    policies: PolicySet | None = None,
    roles: Roles | None = None,
    budgets: BudgetConfig | None = None,
    clock: Callable[[], float] = time.time,
    poll_interval: float = 1.0,
    on_decision: DecisionListener | None = None,
) -> Governance:
    """Governance for a workspace: policies from ``[governance] policies`` (or
    ``<workspace>/policies``), roles and budgets from openlam.toml, every store in the
    project database. ``wait`` defaults to polling the store (non-durable runs);
    ``on_decision`` is called after each decision made through its approvals."""
    from openlam.governance.api import audit_log

    url = settings.app_database_url
    audit = audit_log(settings)
    approvals = ApprovalStore(
        url,
        roles=roles or Roles.from_settings(settings),
        audit=audit,
        clock=clock,
        on_decision=on_decision,
    )
    return Governance(
        policies=policies if policies is not None else load_policies(policy_paths(settings)),
        audit=audit,
        approvals=approvals,
        budgets=Budgets(url, budgets or BudgetConfig.from_settings(settings), clock=clock),
        gaps=GapStore(url, clock=clock),
        wait=wait or polling_wait(approvals, poll_interval),
        clock=clock,
    )


__all__ = ["Governance", "Taint", "build_gate"]
