"""The offline planner: serves goals that match a shipped plan template, with no model.

A template is a pattern over the goal and a plan whose ``{placeholders}`` take the
pattern's named groups. Learned playbooks are matched before this planner is asked
(openlam.learning); when neither serves a goal, the decline names both.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from openlam.actions.registry import ActionRegistry
from openlam.errors import PlannerDeclined
from openlam.learning.literals import shape
from openlam.loop.state import Plan
from openlam.models.resolve import CONNECT_HINT

_URL = r"(?P<url>https?://[^\s'\"]+?)"
_PATH = r"(?P<path>[\w./-]+?)"
_END = r"[.!]?\s*$"


@dataclass(frozen=True)
class PlanTemplate:
    name: str
    pattern: re.Pattern[str]
    steps: tuple[dict[str, Any], ...]
    example: str

    def instantiate(self, params: dict[str, str]) -> Plan:
        return Plan.model_validate({"steps": [_fill(s, params) for s in self.steps]})


def _t(name: str, pattern: str, example: str, *steps: dict[str, Any]) -> PlanTemplate:
    return PlanTemplate(name, re.compile(pattern, re.I), steps, example)


TEMPLATES: tuple[PlanTemplate, ...] = (
    _t(
        "save-page",
        rf"^(?:save|download|store|keep)\s+(?:the\s+)?(?:web\s*)?(?:page|site|url)?\s*(?:at|from)?"
        rf"\s*{_URL}\s+(?:as|to|into|in)\s+{_PATH}{_END}",
        "save the page at https://example.org as notes.md",
        {"id": "s1", "action": "http.get", "args": {"url": "{url}"}},
        {
            "id": "s2",
            "action": "files.write",
            "args": {"path": "{path}", "content": "${s1.output.text}"},
        },
    ),
    _t(
        "write-file",
        rf"^(?:write|put|save)\s+(?P<q>['\"])(?P<text>.+?)(?P=q)\s+(?:to|into|in|as)\s+{_PATH}{_END}",
        "write 'hello' to hello.md",
        {"id": "s1", "action": "files.write", "args": {"path": "{path}", "content": "{text}"}},
        {
            "id": "s2",
            "action": "files.read",
            "args": {"path": "{path}"},
            "depends_on": ["s1"],
            "expect": "the file holds the text",
        },
    ),
    _t(
        "copy-file",
        rf"^copy\s+(?:the\s+file\s+)?(?P<src>[\w./-]+)\s+to\s+{_PATH}{_END}",
        "copy notes.md to backup/notes.md",
        # byte for byte and verified by its hash: a read and a write would carry text
        # only, and turn an image or a Latin-1 file into something else
        {"id": "s1", "action": "files.copy", "args": {"source": "{src}", "destination": "{path}"}},
    ),
    _t(
        "fetch-page",
        rf"^(?:fetch|get|read|open)\s+(?:the\s+page\s+(?:at\s+)?)?{_URL}{_END}",
        "fetch https://example.org",
        {"id": "s1", "action": "http.get", "args": {"url": "{url}"}},
    ),
)


class OfflinePlanner:
    name = "offline"

    def __init__(self, templates: tuple[PlanTemplate, ...] = TEMPLATES) -> None:
        self.templates = templates

    def plan(self, goal: str, registry: ActionRegistry, learned: Sequence[str] = ()) -> Plan:
        """A shipped template's plan for ``goal``; else declines, naming what can be done
        offline: the goal shapes the workspace has ``learned`` (its playbooks, matched
        before this planner is asked) and the shipped templates it has the actions for."""
        usable = [t for t in self.templates if all(s["action"] in registry for s in t.steps)]
        for template in usable:
            match = template.pattern.match(goal.strip())
            if match:
                return template.instantiate(match.groupdict())
        shipped = [f'"{t.example}"' for t in usable]
        served = {shape(t.example) for t in usable}  # a playbook learned from a template
        learned = [s for s in learned if s.lower() not in served]
        raise PlannerDeclined(
            "no model is connected, and nothing learned or shipped matches this goal",
            "I can do these offline: "
            + "; ".join([*(f'"{s}" (learned)' for s in learned), *shipped])
            + f"; for anything else, {CONNECT_HINT}",
        )


def _fill(value: Any, params: dict[str, str]) -> Any:
    if isinstance(value, str):
        for key, val in params.items():
            if val is not None:
                value = value.replace("{" + key + "}", val)
        return value
    if isinstance(value, dict):
        return {k: _fill(v, params) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, params) for v in value]
    return value
