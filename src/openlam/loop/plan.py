"""Plan: ask the planner for a typed plan, validate it, repair it within bounds."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import BaseModel

from openlam.actions.registry import ActionRegistry
from openlam.loop.perceive import Perception
from openlam.loop.state import PLAN_SCHEMA, SUPERSEDED, Plan, RunState, StepStatus
from openlam.loop.validate import parse_plan, validate_plan


class ModelReply(BaseModel):
    """One model request's answer: its text, or why there is none. A durable run journals
    it (``model_dump(mode="json", exclude_none=True)``: the JSON the untyped reply was)."""

    text: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    error: str | None = None  # the request failed, or a budget refused to send it
    requests: int = 1  # requests it took: 0 if refused, more if one was lost in a crash
    cut_off: bool | None = None  # True: the server stopped the reply at its output limit
    # (None, not False, otherwise: a journaled reply's stored form stays as it was)


ModelCall = Callable[[list[dict[str, str]], dict[str, Any]], Awaitable[ModelReply]]
"""Sends chat messages with the plan schema; returns the :class:`ModelReply`. In a
durable run it is a checkpointed step."""


class NoModelPlanner(Protocol):
    """Plans a goal without a model — :class:`openlam.models.offline.OfflinePlanner` is
    one: returns a plan, or raises :class:`~openlam.errors.PlannerDeclined` saying what
    it can do. Defined here, given by whoever runs the loop (models sit above it)."""

    def plan(self, goal: str, registry: ActionRegistry, learned: Sequence[str] = ()) -> Plan: ...


RULES = (
    'Reply with one JSON object only: {"steps":[{"id":"s1","action":"NAME","args":{},'
    '"depends_on":[]}]}. Step ids: letters, digits, _ or -, at most 24 characters. '
    "Use only the actions listed. Pass a step's output to a later step with "
    "${ID.output.FIELD}. Steps with no dependency between them run in parallel. "
    "Special actions: delegate(agent, goal), ask_human(question), "
    "request_capability(capability, reason) when no listed action can do a part of the goal. "
    "Never pretend: a step that no action can do is a request_capability. "
    'When the goal asks a question, add "answer": a sentence built from step outputs, '
    'e.g. "answer":"Order ${s1.output.status}, total ${s1.output.total}" (filled in after '
    "the steps run)."
)


@dataclass
class PlanResult:
    plan: Plan | None
    errors: list[str] = field(default_factory=list)
    declined: str | None = None
    model_failed: bool = False  # the model could not be reached or answered an error


def system_prompt(p: Perception) -> str:
    detailed, others = p.shortlist()
    actions = "\n".join(f"- {spec.signature()}" for spec in detailed)
    if others:
        actions += "\nAlso available (by name): " + _grouped(others)
    context = ("\nKnown context:\n" + "\n".join(f"- {c}" for c in p.context)) if p.context else ""
    return (
        f"You are {p.agent.name}, {p.agent.title}. {p.agent.instructions}\n"
        f"{RULES}\nActions:\n{actions}{context}"
    )


def _grouped(names: list[str]) -> str:
    """email.send, email.read → email.{send,read}"""
    groups: dict[str, list[str]] = {}
    for name in names:
        prefix, _, rest = name.rpartition(".")
        groups.setdefault(prefix, []).append(rest)
    return ", ".join(
        f"{k}.{{{','.join(v)}}}" if k and len(v) > 1 else (f"{k}.{v[0]}" if k else v[0])
        for k, v in groups.items()
    )


def replan_prompt(p: Perception, state: RunState) -> str:
    lines = []
    for r in state.records.values():
        if r.status is StepStatus.succeeded:
            lines.append(f"- {r.id} {r.action} done, output {_brief(r.output)}")
        elif r.error != SUPERSEDED:
            lines.append(f"- {r.id} {r.action} {r.status.value}: {r.error}")
    return (
        f"Goal: {p.goal}\nSo far:\n"
        + "\n".join(lines)
        + "\nPlan only the remaining work, with new step ids. Give each step that redoes a "
        'failed or skipped step "replaces":"<its id>". You may reference finished steps. '
        'If nothing else can be done, reply {"steps":[],"note":"why"}.'
    )


async def make_plan(
    p: Perception,
    call_model: ModelCall,
    state: RunState,
    *,
    replanning: bool,
    max_repairs: int,
    max_steps: int,
) -> PlanResult:
    """Ask for a plan; feed validation errors back until it is valid or repairs run out."""
    done = {i: r.action for i, r in state.records.items()}
    messages = [
        {"role": "system", "content": system_prompt(p)},
        {"role": "user", "content": replan_prompt(p, state) if replanning else f"Goal: {p.goal}"},
    ]
    errors: list[str] = []
    for _ in range(max_repairs + 1):
        reply = await call_model(messages, PLAN_SCHEMA)
        state.usage.model_requests += reply.requests  # + ones lost in a crash
        state.usage.input_tokens += reply.input_tokens
        state.usage.output_tokens += reply.output_tokens
        if reply.error is not None:
            return PlanResult(None, [reply.error], model_failed=True)
        plan, errors = parse_plan(reply.text)
        if plan is None and reply.cut_off:  # not the model's mistake: say what happened
            errors = [
                f"the reply stopped at the model server's output limit ({reply.output_tokens} "
                "tokens) before its JSON ended; send a shorter plan (fewer steps, shorter "
                "arguments), or raise the server's limit"
            ]
        if plan is not None:
            errors = validate_plan(plan, p.actions, done=done, max_steps=max_steps)
            if not errors:
                return PlanResult(plan)
        messages += [
            {"role": "assistant", "content": reply.text[:2000]},
            {
                "role": "user",
                "content": "Your plan cannot run:\n- "
                + "\n- ".join(errors)
                + "\nSend the corrected JSON plan.",
            },
        ]
    return PlanResult(None, errors)


def _brief(value: Any, limit: int = 160) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[:limit] + "…"
