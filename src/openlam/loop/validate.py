"""Validate (OAP): check every step of a plan before anything runs.

Each problem is one exact sentence the planner can act on; they go back to the model
as feedback, and what stays infeasible becomes a capability gap.
"""

from __future__ import annotations

import difflib
import re
from graphlib import CycleError, TopologicalSorter
from typing import Any

from pydantic import ValidationError

from openlam.actions.registry import ActionRegistry
from openlam.loop.references import find_refs
from openlam.loop.reply_json import json_in
from openlam.loop.state import SPECIAL_ACTIONS, Plan

SPECIAL_ARGS = {
    "delegate": ("agent", "goal"),
    "ask_human": ("question",),
    "request_capability": ("capability", "reason"),
}
STEP_ID = re.compile(r"[A-Za-z0-9_-]{1,24}")
"""Step ids become part of idempotency keys and of delegated children's run ids
(``run-….s1.s2``), so they are short and plain."""


def parse_plan(text: str) -> tuple[Plan | None, list[str]]:
    """Read a plan from model text: tolerant of code fences, reasoning and chatter around
    the JSON (:mod:`openlam.loop.reply_json`)."""
    data = json_in(text, lambda v: isinstance(v, list) or (isinstance(v, dict) and "steps" in v))
    if data is None:  # the model's object, so that what is wrong with it can be said
        data = json_in(text, lambda v: isinstance(v, dict))
    if data is None:
        return None, ['the reply is not valid JSON; answer with one JSON object {"steps": [...]}']
    if isinstance(data, list):
        data = {"steps": data}
    try:
        return Plan.model_validate(data), []
    except ValidationError as exc:
        return None, [
            f"plan field {'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:8]
        ]


def validate_plan(
    plan: Plan, registry: ActionRegistry, *, done: dict[str, str] | None = None, max_steps: int = 20
) -> list[str]:
    """Problems with ``plan``; empty when it is safe to execute.

    ``done`` maps ids of steps finished in earlier plan versions to their actions, so a
    replan may reference their outputs.
    """
    done = done or {}
    errors: list[str] = []
    ids = [s.id for s in plan.steps]
    actions = {**done, **{s.id: s.action for s in plan.steps}}
    if len(plan.steps) > max_steps:
        errors.append(f"the plan has {len(plan.steps)} steps; at most {max_steps} are allowed")
    for dup in sorted({i for i in ids if ids.count(i) > 1}):
        errors.append(f"step id {dup} is used more than once; give every step its own id")
    for dup in sorted(set(ids) & set(done)):
        errors.append(f"step id {dup} is already taken by a finished step; choose a new id")
    for step in plan.steps:
        where = f"step {step.id[:40]} ({step.action})"
        if not STEP_ID.fullmatch(step.id):
            errors.append(
                f"step id {step.id[:40]!r} is not allowed; use letters, digits, _ "
                "or -, at most 24 characters (e.g. s1)"
            )
        if step.action in SPECIAL_ACTIONS:
            for arg in SPECIAL_ARGS[step.action]:
                if not isinstance(step.args.get(arg), str) or not step.args[arg].strip():
                    errors.append(f"{where}: argument {arg} (text) is required")
        else:
            spec = registry.get(step.action)
            if spec is None:
                close = difflib.get_close_matches(step.action, [s.name for s in registry], n=3)
                hint = (
                    f"; did you mean {', '.join(close)}?"
                    if close
                    else "; use request_capability if no listed action can do it"
                )
                errors.append(f"{where}: unknown action {step.action}{hint}")
            else:
                errors += [f"{where}: {e}" for e in _arg_errors(spec, step.args)]
        for dep in step.depends_on:
            if dep not in actions:
                errors.append(f"{where}: depends_on names unknown step {dep}")
        for ref_step, fields in find_refs(step.args):
            if ref_step not in actions:
                errors.append(
                    f"{where}: references ${{{ref_step}.output}} but there is no step {ref_step}"
                )
                continue
            if ref_step == step.id:
                errors.append(f"{where}: references its own output")
                continue
            if ref_step not in done and ref_step not in step.depends_on:
                step.depends_on.append(ref_step)  # a reference implies the dependency
            errors += _field_errors(where, ref_step, fields, registry.get(actions[ref_step]))
    for ref_step, fields in find_refs(plan.answer or ""):
        if ref_step not in actions:
            errors.append(
                f"the answer references ${{{ref_step}.output}} but there is no step {ref_step}"
            )
        else:
            errors += _field_errors("the answer", ref_step, fields, registry.get(actions[ref_step]))
    graph = {s.id: [d for d in s.depends_on if d in ids] for s in plan.steps}
    try:
        TopologicalSorter(graph).prepare()
    except CycleError as exc:
        cycle = " -> ".join(map(str, exc.args[1]))
        errors.append(f"dependency cycle {cycle}; steps cannot wait on each other")
    return errors


def _arg_errors(spec: Any, args: dict[str, Any]) -> list[str]:
    # Arguments holding a whole reference are typed only when they resolve, at act time.
    deferred = {k for k, v in args.items() if isinstance(v, str) and "${" in v}
    try:
        spec.validate_args(args)
    except ValidationError as exc:
        return [
            f"argument {'.'.join(map(str, e['loc'])) or '?'}: {e['msg']}"
            for e in exc.errors()
            if not (e["loc"] and e["loc"][0] in deferred)
        ]
    return []


def _field_errors(where: str, ref_step: str, fields: list[str], spec: Any) -> list[str]:
    if not fields or spec is None:
        return []
    props = (spec.output_schema or {}).get("properties")
    if props and fields[0] not in props:
        return [
            f"{where}: ${{{ref_step}.output.{'.'.join(fields)}}} — {spec.name} returns "
            f"{{{', '.join(props)}}}, not {fields[0]}"
        ]
    return []
