"""Playbooks: a successful run's plan, generalised so that goals of the same shape
replay it with their own values and no model.

Generalising: each literal of the goal (see :mod:`openlam.learning.literals`) that
appears in a step's arguments becomes a typed parameter ``{p1}``; references to earlier
steps (``${s1.output.x}``) are kept as they are. Literals the steps do not use stay
fixed in the goal pattern (a goal must repeat them to match). A plan that would keep an
email address, or a secret, anywhere but in a parameter is not generalised: playbooks
never hold personal data or credentials verbatim.

Matching: a goal's shape is looked up in a dictionary (cost independent of the number
of playbooks), then the playbook's pattern must match the whole goal and every
parameter must pass its type check.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from openlam.learning.literals import TYPES, Literal, literals, shape, type_ok

REFERENCE = re.compile(r"\$\{[^{}]*\}")  # not [^}]*: "${${${…" would be quadratic
EMAIL = re.compile(TYPES["email"])
WHOLE_PARAM = "$param"  # a non-string argument that was a parameter: {"$param": "p1"}


@dataclass
class Playbook:
    id: str
    shape: str
    pattern: str  # a regex over the whole goal, one named group per parameter
    params: dict[str, str]  # name → type
    steps: list[dict[str, Any]]
    agent: str = "operator"
    model: str = ""
    runs: list[str] = field(default_factory=list)
    successes: int = 0
    failures: int = 0
    failing: int = 0  # failures since the last success: DEMOTE_AFTER of them retire it
    last_failure: str | None = None
    example: str = ""  # the goal with its parameters shown as <p1:email>

    @property
    def actions(self) -> list[str]:
        return [s["action"] for s in self.steps]

    def extract(self, goal: str) -> dict[str, str] | None:
        """The parameters of ``goal``, or None if it does not match or a value has the
        wrong type."""
        m = re.fullmatch(self.pattern, goal.strip().rstrip(".!"), re.I | re.S)
        if m is None:
            return None
        values = {k: v for k, v in m.groupdict().items() if v is not None}
        if set(values) != set(self.params) or not all(
            type_ok(self.params[k], v) for k, v in values.items()
        ):
            return None
        return values

    def instantiate(self, values: dict[str, str]) -> list[dict[str, Any]]:
        return [_fill(step, values, self.params) for step in self.steps]


def generalise(
    goal: str, steps: list[dict[str, Any]], *, secret: Callable[[Any], Any] = lambda v: v
) -> tuple[Playbook | None, str]:
    """A playbook for ``goal`` carried out by ``steps`` (id, action, args, depends_on), or
    None and why not. ``secret`` redacts known secrets; a playbook that it would change
    holds a secret and is refused."""
    found = literals(goal)
    names: dict[str, str] = {}  # literal value → parameter name
    params: dict[str, str] = {}
    for lit in found:
        if lit.value not in names and _used(lit.value, steps):
            names[lit.value] = f"p{len(names) + 1}"
            params[names[lit.value]] = lit.kind
    general = [_parameterise(s, names) for s in steps]
    text = json.dumps(general, ensure_ascii=False)
    leaked = [e for e in EMAIL.findall(REFERENCE.sub("", text))]
    if leaked:
        return None, (
            "a step argument holds an email address that is not in the goal; "
            "it would be stored verbatim"
        )
    if secret(general) != general:
        return None, "a step argument holds a secret"
    pattern, example = _pattern(goal.strip().rstrip(".!"), found, names)
    if EMAIL.search(REFERENCE.sub("", pattern.replace("\\", ""))):
        return None, "the goal holds an email address that the plan does not use"
    key = shape(goal, found)
    ident = "pb-" + hashlib.sha256(f"{pattern}\0{text}".encode()).hexdigest()[:10]
    return Playbook(
        id=ident, shape=key, pattern=pattern, params=params, steps=general, example=example
    ), ""


def _used(value: str, steps: list[dict[str, Any]]) -> bool:
    return any(_occurs(value, a) for s in steps for a in _leaves(s.get("args", {})))


def _leaves(value: Any) -> Iterable[Any]:
    if isinstance(value, dict):
        for v in value.values():
            yield from _leaves(v)
    elif isinstance(value, list):
        for v in value:
            yield from _leaves(v)
    else:
        yield value


def _occurs(value: str, leaf: Any) -> bool:
    if isinstance(leaf, str):
        return _finder(value).search(_outside_refs(leaf)) is not None
    if isinstance(leaf, int | float) and not isinstance(leaf, bool):
        return str(leaf) == value
    return False


def _outside_refs(text: str) -> str:
    return REFERENCE.sub(" ", text)


def _finder(value: str) -> re.Pattern[str]:
    # whole tokens only: order 10 must not turn "s10", "2104" or "10.5" into a parameter;
    # but a number or id can be a file's stem ("notes/10.md"), while an email or a file
    # name is not cut short by what follows a dot ("a@b.test.evil")
    dotted = r"\.\w" if "." in value or "@" in value else r"\.\d"
    return re.compile(rf"(?<![\w@.-]){re.escape(value)}(?![\w@-]|{dotted})")


def _parameterise(step: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        if isinstance(value, str):
            return _replace_outside_refs(value, names)
        if isinstance(value, int | float) and not isinstance(value, bool) and str(value) in names:
            return {WHOLE_PARAM: names[str(value)]}
        return value

    out = {"id": step["id"], "action": step["action"], "args": walk(step.get("args", {}))}
    if step.get("depends_on"):
        out["depends_on"] = list(step["depends_on"])
    return out


def _replace_outside_refs(text: str, names: dict[str, str]) -> str:
    pieces, at = [], 0
    for ref in REFERENCE.finditer(text):
        pieces += [_substitute(text[at : ref.start()], names), ref.group()]
        at = ref.end()
    pieces.append(_substitute(text[at:], names))
    return "".join(pieces)


def _substitute(text: str, names: dict[str, str]) -> str:
    # literal braces in a plan's own text are doubled so that filling leaves them alone
    text = text.replace("{", "{{").replace("}", "}}")
    for value in sorted(names, key=len, reverse=True):  # longest first: a@b.c before b.c
        text = _finder(value).sub("{" + names[value] + "}", text)
    return text


def _pattern(goal: str, found: list[Literal], names: dict[str, str]) -> tuple[str, str]:
    parts, example, at = [], [], 0
    seen: set[str] = set()
    for lit in found:
        if lit.end > len(goal):
            break
        parts.append(_words(goal[at : lit.start]))
        example.append(goal[at : lit.start])
        name = names.get(lit.value)
        if name is None:  # not used by the plan: the goal must repeat it
            parts.append(re.escape(goal[lit.start : lit.end]))
            example.append(goal[lit.start : lit.end])
        else:
            body = f"(?P<{name}>{TYPES[lit.kind]})" if name not in seen else f"(?P={name})"
            if lit.kind == "text":  # the quotes are not part of the value
                q = goal[lit.start]
                body = (
                    f"{q}(?P<{name}>[^{q}\\n]{{1,500}}){q}"
                    if name not in seen
                    else f"{q}(?P={name}){q}"
                )
            seen.add(name)
            parts.append(body)
            example.append(f"<{name}:{lit.kind}>")
        at = lit.end
    parts.append(_words(goal[at:]))
    example.append(goal[at:])
    return "".join(parts), "".join(example)


def _words(text: str) -> str:
    """Fixed goal text as a regex: any run of spaces matches any other."""
    out, words = [], re.split(r"(\s+)", text)
    for w in words:
        out.append(r"\s+" if w.isspace() else re.escape(w))
    return "".join(out)


def _fill(value: Any, values: dict[str, str], types: dict[str, str]) -> Any:
    if isinstance(value, dict):
        if set(value) == {WHOLE_PARAM}:
            raw = values[value[WHOLE_PARAM]]
            return float(raw) if "." in raw else int(raw)
        return {k: _fill(v, values, types) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, values, types) for v in value]
    if isinstance(value, str):
        return _fill_text(value, values)
    return value


def _fill_text(text: str, values: dict[str, str]) -> str:
    pieces, at = [], 0
    for ref in REFERENCE.finditer(text):
        pieces += [_format(text[at : ref.start()], values), ref.group()]
        at = ref.end()
    pieces.append(_format(text[at:], values))
    return "".join(pieces)


def _format(text: str, values: dict[str, str]) -> str:
    out = re.sub(
        r"\{\{|\}\}|\{(p\d+)\}",
        lambda m: m.group()[0] if m.group() in ("{{", "}}") else values[m.group(1)],
        text,
    )
    return out


class PlaybookIndex:
    """Playbooks by shape, for matching a goal in one dictionary lookup."""

    def __init__(self, playbooks: Iterable[Playbook] = ()) -> None:
        self.by_shape: dict[str, list[Playbook]] = {}
        for pb in playbooks:
            self.add(pb)

    def add(self, pb: Playbook) -> None:
        self.by_shape.setdefault(pb.shape, []).append(pb)

    def candidates(self, goal: str) -> list[Playbook]:
        return self.by_shape.get(shape(goal), [])
