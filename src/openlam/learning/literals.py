"""Literals in a goal: the values that change from one goal of a shape to the next.

Quoted text, URLs, email addresses, file names and numbers or ids (a token holding a
digit) are found left to right without overlap. A goal's *shape* is its text with each
literal replaced by its type, lower-cased, spaces collapsed: "look up customer
<email>, fetch their order <number>". Two goals of one shape differ only in literals,
so the shape is the key a playbook is found by (a dictionary lookup, whatever the
number of playbooks).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# One group per type, in order of precedence: a URL may hold an email-like part and
# a file name; quoted text may hold anything. A literal starts where a run of its
# characters starts (the lookbehinds), an id's run is taken whole (possessive), and a
# path has at most 32 directories: each goal is scanned in time linear in its length
# (without them, 100 KB of one word took minutes: every position restarted the run).
TYPES: dict[str, str] = {
    "text": r"'[^'\n]{1,500}'|\"[^\"\n]{1,500}\"",
    "url": r"https?://[^\s'\"<>]+[^\s'\"<>.,;:!?)]",
    "email": (
        r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
    ),
    "file": r"(?<![\w-])[\w-]+(?:/[\w-]+){0,32}\.(?:[A-Za-z][A-Za-z0-9]{0,4})(?![\w@])",
    "number": r"(?<![\w.])\d+(?:\.\d+)?(?![\w@])",
    "id": r"(?<![\w.-])[A-Za-z0-9](?=[\w-]*\d)[\w-]*+(?![\w@])",
}
FINDER = re.compile("|".join(f"(?P<{name}>{rx})" for name, rx in TYPES.items()))
# What a parameter of each type must look like as a whole (the type check on replay).
WHOLE = {name: re.compile(rf"^(?:{rx})$") for name, rx in TYPES.items()}
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class Literal:
    kind: str
    value: str  # as it appears in the goal (quotes removed from text)
    start: int
    end: int


def literals(goal: str) -> list[Literal]:
    found = []
    for m in FINDER.finditer(goal):
        kind = m.lastgroup or "text"
        value = m.group()
        if kind == "text":
            value = value[1:-1]
        found.append(
            Literal(kind, value.rstrip(".") if kind == "file" else value, m.start(), m.end())
        )
    return found


def shape(goal: str, found: list[Literal] | None = None) -> str:
    """The goal with its literals replaced by ``<type>``; the key playbooks are found by."""
    found = literals(goal) if found is None else found
    parts, at = [], 0
    for lit in found:
        parts += [goal[at : lit.start].lower(), f"<{lit.kind}>"]
        at = lit.end
    parts.append(goal[at:].lower())
    return _SPACES.sub(" ", "".join(parts)).strip().rstrip(".!")


def type_ok(kind: str, value: str) -> bool:
    """Is ``value`` a well-formed ``kind``? (quoted text: any non-empty line)."""
    if kind == "text":
        return bool(value) and "\n" not in value
    return bool(WHOLE[kind].match(value))
