"""Reworded goals: "email alice@x.test the status of order 17" and "send the status of
order 17 to alice@x.test" ask for the same thing with the same values.

A shape's *gist* is what is left when wording that does not change the request is set
aside: its words in order, without filler (articles, pronouns, "to", "of", "and"…),
with a few verbs that mean the same here counted as one (email/mail/send; get/fetch/
look/find/retrieve; notify/tell/inform/alert), followed by the kinds of its values in
any order. The literals may move; the words may not (so "email support … notify
<email>" is not "email <email> … notify support"), and words that change a request —
not, no, never, from, into, without, except, before, after, only… — are kept.

Two goals of one gist match the same playbook when their values can be given to its
parameters without guessing (:func:`assign`): each fixed value of the playbook is in
the goal, and the goal's other values fill the parameters kind by kind — one of a kind
directly; several of a kind by the word just before each (order 17, customer 12), and
only if that word tells them apart. Anything less is not a match: the goal goes to the
model.
"""

from __future__ import annotations

import hashlib
import re

from openlam.learning.literals import Literal, literals, type_ok

# Wording that does not change what is asked. Deliberately short: a word missing here
# only makes two phrasings two gists (the model plans the second once, and it is learned).
FILLER = frozenset(
    """
a an the to of for and then also please kindly it its their them they his her him my our
your me us this that these those at in as is be with via about some any
""".split()
)
SAME_VERB = {
    "email": "send",
    "e-mail": "send",
    "mail": "send",
    "send": "send",
    "get": "get",
    "fetch": "get",
    "retrieve": "get",
    "look": "get",
    "lookup": "get",
    "find": "get",
    "notify": "notify",
    "tell": "notify",
    "inform": "notify",
    "alert": "notify",
    "ping": "notify",
    "delete": "delete",
    "remove": "delete",
    "update": "update",
    "change": "update",
    "modify": "update",
    "edit": "update",
}
_TOKEN = re.compile(r"<(\w+)>|[a-z0-9][a-z0-9'-]*")
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9'-]*")
_MARK = re.compile(r"<(p\d+):(\w+)>")


def gist(goal_shape: str) -> str:
    """The gist of a shape (see :func:`openlam.learning.literals.shape`)."""
    words: list[str] = []
    kinds: list[str] = []
    previous = ""
    for m in _TOKEN.finditer(goal_shape):
        if m.group(1):
            kinds.append(m.group(1))
            previous = ""
            continue
        w = m.group().removesuffix("'s")
        phrasal = w == "up" and previous == "look"  # "look up" is "get"; "scale up" is not
        previous = w
        if w in FILLER or phrasal:
            continue
        w = SAME_VERB.get(w, w)
        if not words or words[-1] != w:  # "look up … fetch" are one "get"
            words.append(w)
    return " ".join(words) + " | " + " ".join(sorted(kinds))


def gist_key(goal_shape: str) -> str:
    return hashlib.sha256(gist(goal_shape).encode()).hexdigest()


def _anchor(text: str, end: int) -> str:
    """The word just before position ``end`` (lower-case, verbs as in the gist), or ""."""
    found = _WORD.findall(text[:end])
    if not found:
        return ""
    word = found[-1].lower()
    return SAME_VERB.get(word) or word


def _slots(example: str) -> tuple[list[tuple[str, str, str]], list[Literal]]:
    """A playbook's example ("… order <p2:number> …") as its parameter slots (name,
    kind, anchor word; first occurrence of each) and its fixed values."""
    slots, seen, fixed, at = [], set(), [], 0
    for m in _MARK.finditer(example):
        fixed += literals(example[at : m.start()])
        if m.group(1) not in seen:
            seen.add(m.group(1))
            slots.append((m.group(1), m.group(2), _anchor(example, m.start())))
        at = m.end()
    fixed += literals(example[at:])
    return slots, fixed


def assign(example: str, params: dict[str, str], goal: str) -> dict[str, str] | None:
    """The values of a reworded ``goal`` for a playbook's parameters (the playbook's
    example and parameter kinds), or None when they cannot be given without guessing or
    do not pass their type checks."""
    slots, fixed = _slots(example)
    if {name for name, _, _ in slots} != set(params):
        return None
    found = literals(goal)
    for lit in fixed:  # a value the playbook keeps must be in the goal, as it was
        same = next((g for g in found if g.kind == lit.kind and g.value == lit.value), None)
        if same is None:
            return None
        found.remove(same)
    values: dict[str, str] = {}
    for kind in {k for _, k, _ in slots} | {g.kind for g in found}:
        wanted = [(name, anchor) for name, k, anchor in slots if k == kind]
        given: dict[str, str] = {}  # value → the word before its first occurrence
        for g in found:
            if g.kind == kind:
                given.setdefault(g.value, _anchor(goal, g.start))
        if len(wanted) != len(given):
            return None
        if len(wanted) == 1:
            values[wanted[0][0]] = next(iter(given))
            continue
        by_anchor = {anchor: name for name, anchor in wanted}
        if len(by_anchor) != len(wanted) or sorted(given.values()) != sorted(by_anchor):
            return None  # the words before them do not tell the values apart
        values.update({by_anchor[anchor]: value for value, anchor in given.items()})
    if not all(type_ok(params[k], v) for k, v in values.items()):
        return None
    return values
