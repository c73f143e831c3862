"""The typed values the loop passes between phases."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, Field

SPECIAL_ACTIONS = ("delegate", "ask_human", "request_capability")
SUPERSEDED = "superseded by a new plan"  # a pending step a replan took over: not a failure


class Step(BaseModel):
    """One step of a plan. ``args`` may hold references like ``${s1.output.text}``."""

    id: str
    action: str
    args: dict[str, Any] = Field(default_factory=dict)
    depends_on: list[str] = Field(default_factory=list)
    replaces: str | None = None


class Plan(BaseModel):
    steps: list[Step] = Field(default_factory=list)
    note: str | None = None
    answer: str | None = None
    """The answer to the goal as a template over step outputs (``"Order
    ${s2.output.status}"``), rendered after the steps without asking the model again."""


# Hand-written rather than Plan.model_json_schema(): it is sent to the model on every
# request, and pydantic's titles and $defs would double its size.
PLAN_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "steps": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "id": {"type": "string"},
                    "action": {"type": "string"},
                    "args": {"type": "object"},
                    "depends_on": {"type": "array", "items": {"type": "string"}},
                    "replaces": {"type": "string"},
                },
                "required": ["id", "action", "args"],
            },
        },
        "note": {"type": "string"},
        "answer": {"type": "string"},
    },
    "required": ["steps"],
}


class StepStatus(StrEnum):
    pending = "pending"
    succeeded = "succeeded"
    failed = "failed"
    skipped = "skipped"
    blocked = "blocked"


class GapKind(StrEnum):
    capability = "capability"
    model = "model"
    human = "human"
    delegation = "delegation"
    plan = "plan"


class Gap(BaseModel):
    kind: GapKind
    what: str
    why: str
    step: str | None = None


class StepResult(BaseModel):
    """What running one step produced: the act phase, the governance gate, special
    steps (delegation, questions) and a replayed checkpoint all return this, made with
    the constructors below. A durable run journals it as ``model_dump(mode="json")``
    and reads it back with ``model_validate``: its fields are a stored format."""

    status: StepStatus
    output: Any = None
    error: str | None = None
    attempts: int = 1
    duration_ms: float = 0.0
    verified: bool = False  # the action's effect was checked after it ran
    note: str | None = None  # e.g. what happened to a step interrupted by a crash
    gap: Gap | None = None  # something the workforce lacks (it is recorded as a run gap)

    @classmethod
    def succeeded(
        cls,
        output: Any = None,
        *,
        attempts: int = 1,
        verified: bool = False,
        note: str | None = None,
    ) -> StepResult:
        return cls(
            status=StepStatus.succeeded,
            output=output,
            attempts=attempts,
            verified=verified,
            note=note,
        )

    @classmethod
    def failed(cls, error: str, attempts: int = 0, output: Any = None) -> StepResult:
        return cls(status=StepStatus.failed, error=error, attempts=attempts, output=output)

    @classmethod
    def blocked(cls, error: str, attempts: int = 0) -> StepResult:
        return cls(status=StepStatus.blocked, error=error, attempts=attempts)


class StepRecord(Step):
    """A step as it happened: the plan's step plus its status and result."""

    status: StepStatus = StepStatus.pending
    output: Any = None
    error: str | None = None
    attempts: int = 0
    idempotency_key: str = ""
    duration_ms: float = 0.0
    verified: bool = False
    note: str | None = None
    recovered_by: str | None = None
    plan_version: int = 1
    tainted: bool = False  # set by governance: its arguments or plan derive from outside

    def apply(self, result: StepResult) -> None:
        self.status, self.output, self.error = result.status, result.output, result.error
        self.attempts, self.duration_ms = result.attempts, result.duration_ms
        self.verified, self.note = result.verified, result.note


class Usage(BaseModel):
    model_requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    wall_seconds: float = 0.0
    overhead_wall_seconds: float = 0.0
    """Wall this process spent on the run outside model requests, actions and waiting
    for a person: planning, governance, checkpoints, audit, databases (see loop/overhead.py)."""
    overhead_cpu_seconds: float = 0.0
    """CPU of the same (the process's CPU: shared when runs go side by side)."""

    def add(self, other: Usage) -> None:
        self.model_requests += other.model_requests
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.overhead_wall_seconds += other.overhead_wall_seconds
        self.overhead_cpu_seconds += other.overhead_cpu_seconds


class RunStatus(StrEnum):
    running = "running"
    completed = "completed"
    partial = "partial"
    blocked = "blocked"
    failed = "failed"
    cancelled = "cancelled"
    interrupted = "interrupted"  # its process stopped; it resumes from its last step


EXIT_CODES = {
    RunStatus.completed: 0,
    RunStatus.partial: 3,
    RunStatus.blocked: 4,
    RunStatus.failed: 1,
    RunStatus.cancelled: 5,
    RunStatus.running: 6,
    RunStatus.interrupted: 130,
}


class Outcome(BaseModel):
    run_id: str
    goal: str
    agent: str = "operator"
    model: str = ""
    status: RunStatus
    summary: str
    steps: list[StepRecord] = Field(default_factory=list)
    deliverables: list[str] = Field(default_factory=list)
    gaps: list[Gap] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)
    plan_versions: int = 0
    parent_id: str | None = None
    routing: str | None = None
    children: list[str] = Field(default_factory=list)
    answer: str | None = None
    """The plan's answer template rendered with the steps' real outputs (None when the plan
    gave none, or a step it names did not succeed)."""

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.status]


class NextStep(BaseModel):
    """What the loop does next, decided by observe."""

    kind: Literal["continue", "replan", "done", "blocked", "failed"]
    reason: str = ""
    ready: list[str] = Field(default_factory=list)


class RunState:
    """Everything a run has learned so far; rebuilt identically when a run is replayed."""

    def __init__(self) -> None:
        self.records: dict[str, StepRecord] = {}
        self.gaps: list[Gap] = []
        self.usage = Usage()
        self.plan_version = 0
        self.replans = 0
        self.delegations = 0
        self.notes: list[str] = []  # the planner's, shown when a run did not complete
        self.remarks: list[str] = []  # OpenLAM's own, always in the summary
        self.stopped: str | None = None  # why the run was stopped (cancel, deadline)
        self.answer: str | None = None  # the first plan's answer template

    def adopt(self, plan: Plan) -> None:
        """Make ``plan`` current: earlier unfinished steps are superseded by it."""
        self.plan_version += 1
        for record in self.records.values():
            if record.status is StepStatus.pending:
                record.status, record.error = StepStatus.skipped, SUPERSEDED
        for step in plan.steps:
            self.records[step.id] = StepRecord(**step.model_dump(), plan_version=self.plan_version)
            for old in _ids(step.replaces):
                if old in self.records and self.records[old].status is not StepStatus.succeeded:
                    self.records[old].recovered_by = step.id  # confirmed only if step succeeds
        if self.plan_version == 1:  # later plans have read tool output: their text is not
            if plan.note:  # repeated to the user as the workforce's own words
                self.notes.append(plan.note)
            self.answer = plan.answer

    @property
    def outputs(self) -> dict[str, Any]:
        return {i: r.output for i, r in self.records.items() if r.status is StepStatus.succeeded}

    def output_of(self, step_id: str) -> Any:
        """A succeeded step's output, or that of the step that redid it after a replan
        (KeyError when neither succeeded)."""
        record = self.records.get(step_id)
        seen: set[str] = set()
        while (
            record is not None
            and record.status is not StepStatus.succeeded
            and record.recovered_by
            and record.id not in seen
        ):
            seen.add(record.id)
            record = self.records.get(record.recovered_by)
        if record is None or record.status is not StepStatus.succeeded:
            raise KeyError(step_id)
        return record.output

    def unrecovered(self) -> list[StepRecord]:
        """Steps that did not happen and were not done another way."""
        out = []
        for r in self.records.values():
            if r.status is StepStatus.succeeded or r.error == SUPERSEDED:
                continue
            fixer = self.records.get(r.recovered_by or "")
            if fixer is None or fixer.status is not StepStatus.succeeded:
                out.append(r)
        return out


def _ids(value: str | None) -> list[str]:
    return [v for v in (value or "").replace(",", " ").split() if v]
