"""The events a run emits while it works, as typed values.

The CLI prints them, the audit log records some of them, the server streams exactly
these (server-sent events), so each kind has one model with its fields; ``Event`` is
the union of them all, told apart by ``kind``.
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, TypeAdapter


class _Event(BaseModel):
    run_id: str
    root_id: str  # the run at the top of the delegation tree (the run itself if none)
    ts: float = Field(default_factory=time.time)


class RunStarted(_Event):
    kind: Literal["run.started"] = "run.started"
    goal: str
    agent: str
    model: str
    routing: str | None = None
    parent_id: str | None = None
    resumed: bool = False  # replaying after an interruption


class PlanMade(_Event):
    kind: Literal["plan"] = "plan"
    version: int
    steps: list[dict[str, Any]]


class StepStarted(_Event):
    kind: Literal["step.started"] = "step.started"
    step: str
    action: str


class StepFinished(_Event):
    kind: Literal["step.finished"] = "step.finished"
    step: str
    action: str
    status: str
    error: str | None = None
    verified: bool = False
    note: str | None = None


class Replanning(_Event):
    kind: Literal["replan"] = "replan"
    reason: str


class ModelRequested(_Event):
    kind: Literal["model.requested"] = "model.requested"
    n: int  # the run's n-th model request


class ModelAnswered(_Event):
    kind: Literal["model.answered"] = "model.answered"
    n: int
    error: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0


class ApprovalRequested(_Event):
    kind: Literal["approval.requested"] = "approval.requested"
    step: str
    approval: str
    action: str
    reason: str


class ApprovalDecided(_Event):
    kind: Literal["approval.decided"] = "approval.decided"
    step: str
    approval: str
    status: str
    by: str | None = None


class QuestionAsked(_Event):
    kind: Literal["question"] = "question"
    step: str
    question: str
    answer_with: str


class RunFinished(_Event):
    kind: Literal["run.finished"] = "run.finished"
    status: str
    summary: str
    answer: str | None = None  # the plan's answer, rendered with the steps' outputs


Event = Annotated[
    RunStarted
    | PlanMade
    | StepStarted
    | StepFinished
    | Replanning
    | ModelRequested
    | ModelAnswered
    | ApprovalRequested
    | ApprovalDecided
    | QuestionAsked
    | RunFinished,
    Field(discriminator="kind"),
]
EVENT = TypeAdapter(Event)


def make_event(data: dict[str, Any]) -> Event:
    """The typed event for ``data`` (its ``kind`` chooses the model); raises
    pydantic's ValidationError for an unknown kind or a missing field."""
    return EVENT.validate_python(data)
