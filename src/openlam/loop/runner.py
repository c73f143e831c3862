"""One run: one agent pursuing one goal, top to bottom.

    perceive → plan → validate → (act → observe)* → learn → outcome

Everything nondeterministic (model calls, actions) goes through ``env.call_model`` and
``env.call_action``; in a durable run those are checkpointed steps, so replaying this
function after a crash rebuilds the same state without repeating any side effect.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, Field

from openlam.actions.registry import ActionRegistry
from openlam.loop.act import ActionCall, ActionCaller, local_action_call
from openlam.loop.events import Event, make_event
from openlam.loop.learn import LearnHook, learn
from openlam.loop.observe import observe
from openlam.loop.overhead import OverheadClock, run_clock
from openlam.loop.perceive import AgentProfile, Perception, perceive
from openlam.loop.plan import ModelCall, ModelReply, NoModelPlanner, PlanResult, make_plan
from openlam.loop.references import ReferenceError_, render, resolve
from openlam.loop.state import (
    SPECIAL_ACTIONS,
    SUPERSEDED,
    Gap,
    GapKind,
    Outcome,
    Plan,
    RunState,
    RunStatus,
    StepRecord,
    StepResult,
    StepStatus,
)
from openlam.loop.validate import validate_plan

__all__ = ["ActionCall", "Routing", "RunEnv", "RunRequest", "Runner", "local_action_call"]

OFFLINE = "offline"
PROGRESS_AFTER_SECONDS = 1.0


class Routing(BaseModel):
    """Why the run's agent was chosen (``RunRequest.routing``), and what choosing it cost:
    a routing model request's usage counts as the run's. Empty when nobody routed."""

    agent: str | None = None
    reason: str | None = None
    method: str | None = None  # named | routine | rules | model
    model_requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    warnings: list[str] = Field(default_factory=list)  # catalog and source files skipped


class RunRequest(BaseModel):
    """Everything one run needs to start (plain data: it is the durable workflow's input,
    so a recovered run restarts from exactly this). ``agent`` is the agent's profile
    (default: the general operator with every action); it is stored as the same JSON
    object the earlier ``dict`` field held, so queued and journaled runs still load."""

    run_id: str
    goal: str
    model: str = OFFLINE
    agent: AgentProfile = Field(default_factory=AgentProfile)
    workspace: str = "."
    max_steps: int = 20
    max_replans: int = 2
    max_plan_repairs: int = 2
    step_timeout: float = 60.0
    step_retries: int = 2
    parent_id: str | None = None
    root_id: str = ""  # the run at the top of a delegation tree ("" = this run)
    lineage: list[str] = Field(default_factory=list)  # agent ids of the delegating ancestors
    context: list[str] = Field(default_factory=list)
    tainted_by: list[str] = Field(default_factory=list)
    """Why this run's own goal is untrusted: a child delegated with text derived from
    tool output carries its parent's untrusted sources ("run-x:s1"); empty = the
    goal came from a person."""
    routing: Routing = Field(default_factory=Routing)
    started_at: float = Field(default_factory=time.time)
    deadline_at: float | None = None  # epoch seconds; past it no step starts
    learn: bool = True  # False (--no-learn): no playbook replay, advice or learning
    priority: int | None = None  # on its queue (1 = most urgent); kept for a re-queue


SpecialHandler = Callable[["Runner", StepRecord, dict[str, Any]], Awaitable[StepResult]]
Gate = Callable[["Runner", StepRecord, dict[str, Any]], Awaitable[StepResult | None]]
"""Governance's hook before every step (special steps included): None lets the step
run; a result stops it. It may also edit the args in place."""


async def ungoverned(_runner: Runner, _record: StepRecord, _args: dict[str, Any]) -> None:
    """The gate of a run without governance (tests, a runtime not yet governed)."""
    return None


async def _no_stop() -> str | None:
    return None


@dataclass
class RunEnv:
    """What a run is given by whoever runs it: the actions it may call, how to reach the
    model and the actions (checkpointed in a durable run), where its events and progress
    go, the special-step handlers, the governance gate and the learn hooks.

    Who makes it: ``openlam.runtime.durable.run_workflow``, once per run (and again
    when a recovered run is replayed), from the process's ``Runtime``: journaled model
    and action calls, ``Governance`` as the gate, the store's ``save_run``. Tests make
    a plain one; only ``registry``, ``call_model`` and ``call_action`` are required::

        env = RunEnv(registry=registry, call_model=scripted_model,
                     call_action=local_action_call(registry))
        outcome = await Runner(RunRequest(run_id="r1", goal="..."), env).run()
    """

    registry: ActionRegistry
    call_model: ModelCall
    call_action: ActionCaller
    emit: Callable[[Event], None] = lambda _event: None
    save: Callable[[RunRequest, RunState, Outcome | None], None] = lambda *_: None
    specials: dict[str, SpecialHandler] = field(default_factory=dict)
    gate: Gate = ungoverned
    learn_hooks: list[LearnHook] = field(default_factory=list)
    resumed: bool = False  # replaying a run that an earlier process started
    explain_missing: Callable[[str, str], str | None] = lambda _action, _agent: None
    """Why an action the plan needs cannot be used by the agent although it exists
    (installed but not permitted, and how to grant it); None: it does not exist."""
    stopped: Callable[[], Awaitable[str | None]] = lambda: _no_stop()
    """Why the run must stop now (cancelled, past its deadline), or None; asked before
    each batch of steps and each plan, so no step starts after a cancel."""
    consult: Callable[[Perception], Awaitable[dict[str, Any]]] | None = None
    """Experience before the first plan (openlam.learning): {"plan", "playbook", "why"}
    to replay a learned playbook with no model, and/or {"advice": [lines]} for the
    planner's prompt. Checkpointed in a durable run, so a replay takes the same path."""
    offline: NoModelPlanner | None = None
    """The planner of a run whose model is ``offline``, and the fallback when the model
    fails (the runtime gives :class:`openlam.models.offline.OfflinePlanner`); None: no
    plan without a model."""


class Runner:
    """Runs one :class:`RunRequest` to its :class:`Outcome` with what :class:`RunEnv`
    provides; the phases live in their own modules, this class only sequences them.

    ``await Runner(request, env).run()`` perceives (the agent's permitted actions), asks
    for a plan and validates it (repairs within ``max_plan_repairs``), acts on the ready
    steps concurrently through ``env.gate`` and ``env.call_action``, observes, replans
    within ``max_replans``, and concludes: the status, a summary that hides nothing, the
    rendered answer, deliverables, gaps and usage. It never raises for a run's failure;
    the outcome says what happened. ``Workforce`` builds the request and a durable env
    (``openlam.runtime.durable``); tests may pass a plain one with
    :func:`local_action_call` (see :class:`RunEnv`).

    Lifecycle: one Runner per run and per replay; it lives for one :meth:`run` call.
    Its state (:class:`~openlam.loop.state.RunState`) is rebuilt from the request and
    the checkpointed results when a durable run is replayed, so it holds nothing that
    must outlive the call. Handlers and the gate receive it to read the request and
    state and to :meth:`emit` events."""

    def __init__(self, request: RunRequest, env: RunEnv) -> None:
        steps_cap = request.agent.max_steps  # the agent's catalog budget, per run
        if steps_cap is not None and steps_cap < request.max_steps:
            request = request.model_copy(update={"max_steps": steps_cap})
        self.request = request
        self.env = env
        self.state = RunState()
        self.started = time.monotonic()
        self.overhead = OverheadClock()  # replaced by the running task's own in run()
        self.model_requests = 0
        self.playbook: str | None = None  # the learned playbook this run replays
        self.learned: list[str] = []  # goal shapes learned playbooks do (offline, declining)
        routed = request.routing
        self.state.usage.model_requests += routed.model_requests
        self.state.usage.input_tokens += routed.input_tokens
        self.state.usage.output_tokens += routed.output_tokens

    async def run(self) -> Outcome:
        self.overhead = run_clock(self.request.run_id)
        p = perceive(
            self.request.goal,
            self.request.agent,
            self.env.registry,
            self.request.context,
        )
        self.env.save(self.request, self.state, None)  # listed (and a parent) from the start
        self.emit(
            "run.started",
            goal=p.goal,
            agent=p.agent.id,
            model=self.request.model,
            routing=self.request.routing.reason,
            parent_id=self.request.parent_id,
            resumed=self.env.resumed,
        )
        result = await self.plan(p, replanning=False)
        while result.plan is not None and result.plan.steps:
            self.state.adopt(result.plan)
            self.emit(
                "plan",
                version=self.state.plan_version,
                steps=[s.model_dump(exclude_defaults=True) for s in result.plan.steps],
            )
            while (next_step := self.observe()).kind == "continue" and not await self.halted():
                await asyncio.gather(*(self.act(self.state.records[i]) for i in next_step.ready))
                self.save_progress()
            if next_step.kind != "replan" or await self.halted():
                break
            self.state.replans += 1
            self.emit("replan", reason=next_step.reason)
            result = await self.plan(p, replanning=True)
        self.note_plan_problems(result)
        outcome = self.conclude()
        self.env.save(self.request, self.state, outcome)
        await learn(
            outcome,
            {
                "request": self.request.model_dump(),
                "notes": self.state.notes,
                "playbook": self.playbook,
            },
            self.env.learn_hooks,
        )
        self.emit(
            "run.finished",
            status=outcome.status.value,
            summary=outcome.summary,
            answer=outcome.answer,
        )
        return outcome

    # -- phases ---------------------------------------------------------------------

    async def halted(self) -> bool:
        """Stop here if the run was cancelled or is past its deadline: steps not started
        are skipped with the reason, and the run ends ``cancelled``."""
        if self.state.stopped is None:
            self.state.stopped = await self.env.stopped()
            if self.state.stopped is not None:
                for record in self.state.records.values():
                    if record.status is StepStatus.pending:
                        record.status = StepStatus.skipped
                        record.error = f"not run: {self.state.stopped}"
        return self.state.stopped is not None

    async def plan(self, p: Perception, *, replanning: bool) -> PlanResult:
        if await self.halted():
            return PlanResult(None)
        if not replanning and self.env.consult is not None and self.request.learn:
            replay = await self.consult(p)
            if replay is not None:
                return replay
        if self.request.model == OFFLINE:
            return self.offline_plan(p, replanning)
        budget = self.request.max_steps - len(self.state.records)
        result = await make_plan(
            p,
            self.ask_model,
            self.state,
            replanning=replanning,
            max_repairs=self.request.max_plan_repairs,
            max_steps=max(budget, 0),
        )
        if result.model_failed and not replanning:
            # The model is down or broken; the offline planner may still know this goal.
            fallback = self.offline_plan(p, replanning)
            if fallback.plan is not None:
                self.state.remarks.append(
                    f"the model failed ({result.errors[0]}); the offline planner served this goal"
                )
                return fallback
        if result.plan is not None and not result.plan.steps:
            # A replan has read tool output: its free text is not repeated in the report,
            # where an injected instruction could pose as the workforce's own words.
            why = f": {result.plan.note}" if result.plan.note and not replanning else ""
            self.state.notes.append(
                (
                    "the planner has nothing more to do"
                    if replanning
                    else "the planner proposed no steps"
                )
                + why
            )
        return result

    async def consult(self, p: Perception) -> PlanResult | None:
        """A learned playbook's plan for this goal (validated like a model's), else None;
        advice from experience goes into the planner's context either way."""
        found = await self.env.consult(p)  # type: ignore[misc]
        p.context.extend(found.get("advice") or [])
        self.learned = list(found.get("learned") or [])
        if not found.get("plan"):
            return None
        plan = Plan.model_validate(found["plan"])
        errors = validate_plan(plan, p.actions, max_steps=self.request.max_steps)
        if errors:
            self.state.remarks.append(
                f"playbook {found['playbook']} was not replayed: " + "; ".join(errors[:3])
            )
            return None
        self.playbook = found["playbook"]
        self.state.remarks.append(f"no model needed: {found['why']}")
        return PlanResult(plan)

    def offline_plan(self, p: Perception, replanning: bool) -> PlanResult:
        """A shipped (or learned) plan for the goal — validated like any model's plan."""
        from openlam.errors import PlannerDeclined

        if replanning:  # templates cannot think of another way; the failure stands
            return PlanResult(None)
        if self.env.offline is None:
            return PlanResult(None, ["no planner without a model was given to this run"])
        try:
            plan = self.env.offline.plan(p.goal, p.actions, learned=self.learned)
        except PlannerDeclined as exc:
            return PlanResult(None, [exc.reason], declined=exc.hint)
        errors = validate_plan(plan, p.actions, max_steps=self.request.max_steps)
        return PlanResult(None, errors) if errors else PlanResult(plan)

    async def ask_model(self, messages: list[dict[str, str]], schema: dict[str, Any]) -> ModelReply:
        """The model call, announced: someone watching sees that the run is waiting.
        The agent's catalog budget (``max_model_requests`` per run) is kept here, where
        every model request of the run passes."""
        cap = self.request.agent.max_model_requests
        if cap is not None and self.model_requests >= cap:
            agent = self.request.agent.id
            return ModelReply(
                error=f"budget agent[{agent}].max_model_requests exhausted: {cap} "
                "model requests per run (its catalog budget)",
                requests=0,
            )
        self.model_requests += 1
        n = self.model_requests
        self.emit("model.requested", n=n)
        reply = await self.env.call_model(messages, schema)
        self.emit(
            "model.answered",
            n=n,
            error=reply.error,
            input_tokens=reply.input_tokens,
            output_tokens=reply.output_tokens,
        )
        return reply

    async def act(self, record: StepRecord) -> None:
        record.idempotency_key = f"{self.request.run_id}:{record.id}"
        self.emit("step.started", step=record.id, action=record.action)
        try:
            args = resolve(record.args, self.state.outputs)
        except ReferenceError_ as exc:
            result = StepResult.failed(f"bad reference: {exc}")
        else:
            special = record.action in SPECIAL_ACTIONS or record.action in self.env.specials
            stopped = await self.env.gate(self, record, args)  # special steps included
            if stopped is not None:
                result = stopped
            elif special:
                handler = self.env.specials.get(record.action, _unavailable_special)
                with self.overhead.working():  # a person's answer, a delegated child's run
                    result = await handler(self, record, args)
            else:
                result = await self.env.call_action(
                    ActionCall(
                        run_id=self.request.run_id,
                        step_id=record.id,
                        action=record.action,
                        args=args,
                        idempotency_key=record.idempotency_key,
                        workspace=self.request.workspace,
                        root_id=self.request.root_id or self.request.run_id,
                        timeout=self.request.step_timeout,
                        retries=self.request.step_retries,
                        tainted=record.tainted,
                    )
                )
        record.apply(result)
        if result.gap is not None:
            self.state.gaps.append(result.gap.model_copy(update={"step": record.id}))
        self.emit(
            "step.finished",
            step=record.id,
            action=record.action,
            status=record.status.value,
            error=record.error,
            verified=record.verified,
            note=record.note,
        )

    def save_progress(self) -> None:
        """Store the steps so far — for runs long enough for someone to look meanwhile."""
        if time.monotonic() - self.started > PROGRESS_AFTER_SECONDS:
            self.env.save(self.request, self.state, None)

    def observe(self):
        return observe(self.state, replans_left=self.request.max_replans - self.state.replans)

    # -- outcome --------------------------------------------------------------------

    def note_plan_problems(self, result: PlanResult) -> None:
        if result.declined:
            self.state.gaps.append(
                Gap(
                    kind=GapKind.model,
                    what="a language model",
                    why=f"{result.errors[0]}. {result.declined}",
                )
            )
        elif result.plan is None and result.errors:
            unknown = [e for e in result.errors if ": unknown action " in e]
            agent = self.request.agent.id
            for error in unknown:
                what = error.split(": unknown action ", 1)[1].split(";")[0]
                why = self.env.explain_missing(what, agent) if what in self.env.registry else None
                self.state.gaps.append(
                    Gap(
                        kind=GapKind.capability,
                        what=what,
                        why=why or (f"the plan needs {what}, which no installed action provides"),
                    )
                )
            if len(unknown) < len(result.errors):
                self.state.notes.append("planning failed: " + "; ".join(result.errors[:6]))

    def answer(self) -> str | None:
        """The first plan's answer template filled with the real outputs of the steps it
        names (or of the steps that redid them): no model request. None, with a remark,
        when a step it names did not succeed — an answer is never made up."""
        if not self.state.answer or self.state.stopped is not None:
            return None
        try:
            return render(self.state.answer, self.state.output_of)
        except ReferenceError_ as exc:
            self.state.remarks.append(f"no answer: {exc}")
            return None

    def conclude(self) -> Outcome:
        answer = self.answer()
        records = list(self.state.records.values())
        done = [r for r in records if r.status is StepStatus.succeeded]
        missing = self.state.unrecovered()
        failed = [r for r in missing if r.status is StepStatus.failed]
        if self.state.stopped is not None:
            status = RunStatus.cancelled
        elif done and not missing and not self.state.gaps:
            status = RunStatus.completed
        elif done:
            status = RunStatus.partial
        elif self.state.gaps and not failed:
            status = RunStatus.blocked
        else:
            status = RunStatus.failed
        self.state.usage.wall_seconds = round(time.time() - self.request.started_at, 3)
        own_wall, own_cpu = self.overhead.measure()  # plus the delegated children's
        self.state.usage.overhead_wall_seconds += own_wall
        self.state.usage.overhead_cpu_seconds += own_cpu
        return Outcome(
            run_id=self.request.run_id,
            goal=self.request.goal,
            agent=self.request.agent.id,
            model=self.request.model,
            status=status,
            summary=_summary(status, done, records, missing, self.state),
            steps=records,
            deliverables=_deliverables(done, self.env.registry),
            gaps=self.state.gaps,
            usage=self.state.usage,
            plan_versions=self.state.plan_version,
            parent_id=self.request.parent_id,
            routing=self.request.routing.reason,
            children=[
                r.output["run_id"]
                for r in records
                if isinstance(r.output, dict) and r.output.get("child")
            ],
            answer=answer,
        )

    def emit(self, kind: str, **data: Any) -> None:
        if kind == "approval.requested":  # waiting for a person is not overhead
            self.overhead.enter()
        elif kind == "approval.decided":
            self.overhead.leave()
        event = make_event(
            {
                "run_id": self.request.run_id,
                "root_id": self.request.root_id or self.request.run_id,
                "kind": kind,
                **data,
            }
        )
        self.env.emit(event)


async def _unavailable_special(
    runner: Runner, record: StepRecord, args: dict[str, Any]
) -> StepResult:
    """Special steps end as honest gaps until a handler for them is installed."""
    kind, what, why = {
        "request_capability": (
            GapKind.capability,
            args.get("capability", "?"),
            args.get("reason", ""),
        ),
        "ask_human": (GapKind.human, "an answer from a person", args.get("question", "")),
        "delegate": (
            GapKind.delegation,
            f"delegation to {args.get('agent', '?')}",
            f"delegation is not available here; sub-goal: {args.get('goal', '')}",
        ),
    }[record.action]
    runner.state.gaps.append(Gap(kind=kind, what=str(what), why=str(why), step=record.id))
    return StepResult.blocked(f"{record.action}: {why}")


def _summary(
    status: RunStatus,
    done: list[StepRecord],
    records: list[StepRecord],
    missing: list[StepRecord],
    state: RunState,
) -> str:
    counted = [r for r in records if r.error != SUPERSEDED]
    head = f"{len(done)} of {len(counted)} steps succeeded" if counted else "nothing was done"
    problems = [f"stopped: {state.stopped}"] if state.stopped else []
    problems += [
        f"{r.id} {r.action} {r.status.value}: {r.error}"
        for r in missing
        if not (state.stopped and r.status is StepStatus.skipped)
    ][:5]
    problems += [f"missing {g.what}" for g in state.gaps if g.step is None]
    problems += state.notes[-2:] if status is not RunStatus.completed else []
    problems += state.remarks
    repeats = [r.id for r in done if r.note and "at least once" in r.note]
    if repeats:  # never claim exactly once for what may have happened twice
        problems.append(
            f"{', '.join(repeats)} ran again after an interruption and may have happened twice"
        )
    text = f"{status.value.capitalize()}: {head}."
    return text + (" " + " | ".join(problems) if problems else "")


def _deliverables(done: list[StepRecord], registry: ActionRegistry) -> list[str]:
    """Files that write-tier actions report having made (their output's ``path``), and
    those of delegated child runs."""
    from openlam.actions.spec import Risk

    paths: list[str] = []
    for r in done:
        spec = registry.get(r.action)
        output = r.output if isinstance(r.output, dict) else {}
        found = (
            output.get("deliverables", [])
            if output.get("child")
            else [output.get("path")]
            if spec is not None and spec.risk is Risk.write
            else []
        )
        paths += [p for p in found if isinstance(p, str) and p not in paths]
    return paths
