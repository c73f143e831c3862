"""Policies: YAML rules that allow, deny or require approval for an action.

Scopes nest org → department → agent; within a scope a rule naming an exact action is
more specific than a glob, which is more specific than no action at all; then more
conditions beat fewer. The most specific matching rule decides. Two matching rules
that are equally specific but disagree resolve to the more restrictive effect
(deny > require_approval > allow) — a conflict never loosens anything.

A file::

    scope: org                      # or {department: finance} or {agent: cfo}
    allow_external: ["search.*"]    # external actions allowed without approval
    trusted_outputs: ["crm.lookup"] # outputs of these actions are not untrusted
    guardrails: {tainted_origin: write, tainted_args: external}
    rules:
      - id: big-payments
        action: "payments.*"          # glob or list of globs
        risk: financial               # or a list of tiers
        when:
          args:
            amount: {above: 1000}
            to: {outside_domains: [example.com]}
            "*": {matches: "(?i)password"}
          provenance: untrusted       # the step derives from tool output
          untrusted_args: [to]        # these arguments derive from tool output
          within: {days: [mon, tue, wed, thu, fri], from: "09:00", to: "17:00", tz: UTC}
        decision: require_approval    # allow | deny | require_approval
        reason: payments over 1000 need a second pair of eyes
        expires: 24h                  # how long an approval request stays open

Built-in defaults sit below every file: read and write are allowed, external needs
approval unless allow-listed, financial and destructive need approval.

The taint guardrail applies after the deciding rule: an *allowed* step whose plan was
made after untrusted content was read (risk ≥ ``tainted_origin``) or whose arguments
derive from tool output (risk ≥ ``tainted_args``) needs approval instead, unless the
deciding rule says ``trust_tool_output: true``. An *egress* (an action that sends data
to a host its arguments name: ``http.get``, ``web.fetch``, ``social.*``…) that is tainted
in either way needs approval whatever its tier — a read-tier fetch of
``https://x/?d=<secret>`` is how data leaves.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from enum import StrEnum
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from openlam import yamlfile
from openlam.actions.spec import Risk
from openlam.errors import UserError, not_utf8
from openlam.validation import whole_number
from openlam.yamlfile import LineDict, line_of

RISK_ORDER = {Risk.read: 0, Risk.write: 1, Risk.external: 2, Risk.financial: 3, Risk.destructive: 4}
LEVELS = {"default": 0, "org": 1, "department": 2, "agent": 3}
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DEFAULT_EXPIRY = 24 * 3600.0


class Effect(StrEnum):
    allow = "allow"
    require_approval = "require_approval"
    deny = "deny"


STRICTNESS = {Effect.allow: 0, Effect.require_approval: 1, Effect.deny: 2}


class PolicyError(UserError):
    """One or more problems in policy files, each as ``file:line: message``."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(
            "invalid policy:\n  " + "\n  ".join(problems),
            "correct the named lines; `openlam policy check` re-validates",
        )
        self.problems = problems


# -- what a decision is about --------------------------------------------------------


@dataclass
class Query:
    """One step about to run, as policies see it (args already resolved)."""

    action: str
    risk: Risk
    args: dict[str, Any]
    agent: str = ""
    department: str = ""
    tainted_origin: bool = False
    tainted_args: frozenset[str] = frozenset()
    egress: bool = False  # the action sends data to a host its arguments name
    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def tainted(self) -> bool:
        return self.tainted_origin or bool(self.tainted_args)


@dataclass
class Decision:
    effect: Effect
    rule_id: str
    reason: str
    source: str = ""
    guardrail: str | None = None
    expires_in: float = DEFAULT_EXPIRY
    considered: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "effect": self.effect.value,
            "rule_id": self.rule_id,
            "reason": self.reason,
            "source": self.source,
            "guardrail": self.guardrail,
            "expires_in": self.expires_in,
            "considered": self.considered,
        }


# -- conditions ----------------------------------------------------------------------

# Each match starts where a run of its characters starts (the lookbehinds), so an
# argument of any length is scanned in linear time: with ``\b`` or no anchor, 100 KB of
# "a.a.a…" or "x-x-x…" in an email's body held the event loop for minutes. A local part
# may hold any letter (josé@…), as SMTPUTF8 allows: its domain is still checked.
_EMAIL = re.compile(r"(?<![\w.%+-])[\w.%+-]+@([A-Za-z0-9.-]+\.[A-Za-z]{2,})")
_URL_HOST = re.compile(r"(?<![a-z0-9+.-])[a-z][a-z0-9+.-]*://([^/\s:?#]+)", re.I)
_ARG_OPS = (
    "above",
    "below",
    "at_least",
    "at_most",
    "outside_domains",
    "matches",
    "count_above",
    "equals",
    "in",
    "not_in",
    "present",
)


@dataclass(frozen=True)
class ArgCondition:
    arg: str
    ops: tuple[tuple[str, Any], ...]

    def holds(self, args: Mapping[str, Any]) -> bool:
        if self.arg == "*" or any(c in self.arg for c in "*?["):
            names = [k for k in args if fnmatch.fnmatchcase(k, self.arg)]
            return any(self._holds_for(args[k], True) for k in names)
        present, value = _dig(args, self.arg)
        return self._holds_for(value, present)

    def _holds_for(self, value: Any, present: bool) -> bool:
        return all(_op(op, want, value, present) for op, want in self.ops)


def _dig(args: Mapping[str, Any], path: str) -> tuple[bool, Any]:
    current: Any = args
    for part in path.split("."):
        if isinstance(current, Mapping) and part in current:
            current = current[part]
        elif (
            isinstance(current, list)
            and (at := whole_number(part)) is not None
            and at < len(current)
        ):
            current = current[at]
        else:
            return False, None
    return True, current


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.replace(",", "").strip())
        except ValueError:
            return None
    return None


def _texts(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [t for v in value.values() for t in _texts(v)]
    if isinstance(value, list | tuple):
        return [t for v in value for t in _texts(v)]
    return [] if value is None else [str(value)]


def domains_in(value: Any) -> list[str]:
    """Domains of the email addresses and URL hosts anywhere inside ``value``."""
    found: list[str] = []
    for text in _texts(value):
        found += [d.lower() for d in _EMAIL.findall(text)]
        found += [h.lower() for h in _URL_HOST.findall(text)]
    return found


def _in_domains(domain: str, allowed: Iterable[str]) -> bool:
    return any(domain == a or domain.endswith("." + a) for a in allowed)


def _op(op: str, want: Any, value: Any, present: bool) -> bool:
    if op == "present":
        return present is bool(want)
    if not present:
        return False
    if op in ("above", "below", "at_least", "at_most"):
        number = _number(value)
        if number is None:
            return False
        return {
            "above": number > want,
            "below": number < want,
            "at_least": number >= want,
            "at_most": number <= want,
        }[op]
    if op == "outside_domains":
        allowed = [d.lower() for d in want]
        return any(not _in_domains(d, allowed) for d in domains_in(value))
    if op == "matches":
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        return re.search(want, text) is not None
    if op == "count_above":
        count = len(value) if isinstance(value, list | tuple) else (0 if value in (None, "") else 1)
        return count > want
    if op == "equals":
        return value == want
    if op == "in":
        return value in want
    if op == "not_in":
        return value not in want
    raise AssertionError(op)


@dataclass(frozen=True)
class TimeWindow:
    days: tuple[str, ...] = DAYS
    start: time = time(0, 0)
    end: time = time(23, 59, 59, 999999)
    tz: str = "UTC"

    def contains(self, now: datetime) -> bool:
        local = now.astimezone(ZoneInfo(self.tz))
        if DAYS[local.weekday()] not in self.days:
            return False
        t = local.time()
        if self.start <= self.end:
            return self.start <= t < self.end or (self.end == time.max and t == time.max)
        return t >= self.start or t < self.end  # a window across midnight


# -- rules ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    id: str
    effect: Effect
    level: str = "org"
    department: str | None = None
    agent: str | None = None
    actions: tuple[str, ...] = ()
    risks: tuple[Risk, ...] = ()
    args: tuple[ArgCondition, ...] = ()
    provenance: str | None = None
    untrusted_args: tuple[str, ...] = ()
    within: TimeWindow | None = None
    outside: TimeWindow | None = None
    reason: str = ""
    source: str = ""
    expires_in: float = DEFAULT_EXPIRY
    trust_tool_output: bool = False

    def specificity(self) -> tuple[int, int, int]:
        if not self.actions:
            action = 0
        elif all(not any(c in a for c in "*?[") for a in self.actions):
            action = 2
        else:
            action = 1
        conditions = (
            bool(self.risks)
            + len(self.args)
            + bool(self.provenance)
            + bool(self.untrusted_args)
            + bool(self.within)
            + bool(self.outside)
        )
        return LEVELS[self.level], action, conditions

    def applies(self, q: Query) -> bool:
        if self.department is not None and self.department != q.department:
            return False
        if self.agent is not None and self.agent != q.agent:
            return False
        if self.actions and not any(fnmatch.fnmatchcase(q.action, a) for a in self.actions):
            return False
        if self.risks and q.risk not in self.risks:
            return False
        if self.provenance == "untrusted" and not q.tainted:
            return False
        if self.provenance == "trusted" and q.tainted:
            return False
        if self.untrusted_args and not any(
            fnmatch.fnmatchcase(a, pat) for a in q.tainted_args for pat in self.untrusted_args
        ):
            return False
        if self.within is not None and not self.within.contains(q.now):
            return False
        if self.outside is not None and self.outside.contains(q.now):
            return False
        return all(c.holds(q.args) for c in self.args)


DEFAULT_RULES = (
    Rule(
        "default:read",
        Effect.allow,
        "default",
        risks=(Risk.read,),
        reason="read actions are allowed by default",
        source="built-in",
    ),
    Rule(
        "default:write",
        Effect.allow,
        "default",
        risks=(Risk.write,),
        reason="write actions are allowed by default",
        source="built-in",
    ),
    Rule(
        "default:external",
        Effect.require_approval,
        "default",
        risks=(Risk.external,),
        reason="external actions need approval unless allow-listed",
        source="built-in",
    ),
    Rule(
        "default:financial",
        Effect.require_approval,
        "default",
        risks=(Risk.financial,),
        reason="financial actions need approval",
        source="built-in",
    ),
    Rule(
        "default:destructive",
        Effect.require_approval,
        "default",
        risks=(Risk.destructive,),
        reason="destructive actions need approval",
        source="built-in",
    ),
)


@dataclass
class PolicySet:
    rules: list[Rule] = field(default_factory=list)
    trusted_outputs: tuple[str, ...] = ()
    tainted_origin: Risk = Risk.write
    tainted_args: Risk = Risk.external
    files: list[str] = field(default_factory=list)

    def all_rules(self) -> list[Rule]:
        return [*DEFAULT_RULES, *self.rules]

    def rule(self, rule_id: str) -> Rule | None:
        return next((r for r in self.all_rules() if r.id == rule_id), None)

    def decide(self, q: Query) -> Decision:
        matching = [r for r in self.all_rules() if r.applies(q)]
        if not matching:  # every tier has a default, so only an unknown tier gets here
            return Decision(
                Effect.require_approval,
                "default:unknown-risk",
                f"no rule covers risk {q.risk}",
                "built-in",
            )
        top = max(r.specificity() for r in matching)
        best = [r for r in matching if r.specificity() == top]
        winner = max(best, key=lambda r: STRICTNESS[r.effect])
        reason = winner.reason or f"rule {winner.id}"
        if len({r.effect for r in best}) > 1:
            reason += (
                f" (conflicting rules {', '.join(r.id for r in best)} are equally "
                "specific; the most restrictive applies)"
            )
        decision = Decision(
            winner.effect,
            winner.id,
            reason,
            winner.source,
            expires_in=winner.expires_in,
            considered=len(matching),
        )
        if decision.effect is Effect.allow and not winner.trust_tool_output:
            rank = RISK_ORDER[q.risk]
            if q.egress and q.tainted:
                decision.effect, decision.guardrail = Effect.require_approval, "tainted-egress"
                why = (
                    f"arguments derived from tool output ({', '.join(sorted(q.tainted_args))})"
                    if q.tainted_args
                    else "planned after untrusted content was read"
                )
                decision.reason = (
                    f"{q.action} sends data to a host its arguments name, "
                    f"{why}; rule {winner.id} would allow it"
                )
            elif q.tainted_args and rank >= RISK_ORDER[self.tainted_args]:
                decision.effect, decision.guardrail = Effect.require_approval, "tainted-args"
                decision.reason = (
                    f"{q.risk.value} action with arguments derived from tool "
                    f"output ({', '.join(sorted(q.tainted_args))}); "
                    f"rule {winner.id} would allow it"
                )
            elif q.tainted_origin and rank >= RISK_ORDER[self.tainted_origin]:
                decision.effect, decision.guardrail = Effect.require_approval, "tainted-origin"
                decision.reason = (
                    f"{q.risk.value} step planned after untrusted tool output "
                    f"was read; rule {winner.id} would allow it"
                )
        return decision

    def trusted_output(self, action: str) -> bool:
        return any(fnmatch.fnmatchcase(action, p) for p in self.trusted_outputs)


# -- loading (line numbers come from openlam.yamlfile) ------------------------------

_FILE_KEYS = {"version", "scope", "allow_external", "trusted_outputs", "guardrails", "rules"}
_RULE_KEYS = {
    "id",
    "action",
    "risk",
    "when",
    "decision",
    "reason",
    "department",
    "agent",
    "expires",
    "trust_tool_output",
}
_WHEN_KEYS = {"args", "provenance", "untrusted_args", "within", "outside"}


class _Problems:
    def __init__(self, path: str) -> None:
        self.path = path
        self.items: list[str] = []

    def add(self, line: int, message: str) -> None:
        self.items.append(f"{self.path}:{line}: {message}")


def _strings(value: Any) -> tuple[str, ...] | None:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    return None


def parse_duration(text: Any) -> float | None:
    """``90``, ``"30m"``, ``"2h"``, ``"7d"`` → seconds; None if not a duration."""
    if isinstance(text, int | float) and not isinstance(text, bool) and text > 0:
        return float(text)
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd])\s*", str(text))
    if not m:
        return None
    return float(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]


def _window(value: Any, line: int, problems: _Problems) -> TimeWindow | None:
    if not isinstance(value, Mapping):
        problems.add(line, "a time window is a mapping {days, from, to, tz}")
        return None
    unknown = set(value) - {"days", "from", "to", "tz"}
    if unknown:
        problems.add(line, f"unknown time window key(s) {', '.join(map(str, sorted(unknown)))}")
    days = _strings(value.get("days", list(DAYS)))
    if days is None or any(d.lower()[:3] not in DAYS for d in days):
        problems.add(line_of(value, "days", line), f"days must be a list of {', '.join(DAYS)}")
        days = DAYS
    bounds = []
    for key, default in (("from", "00:00"), ("to", "24:00")):
        raw = str(value.get(key, default))
        m = re.fullmatch(r"(\d{1,2}):(\d{2})", raw)
        if not m or int(m.group(1)) > 24 or int(m.group(2)) > 59:
            problems.add(line_of(value, key, line), f"{key} must be HH:MM, got {raw!r}")
            bounds.append(time(0, 0))
        elif int(m.group(1)) == 24:
            bounds.append(time.max)
        else:
            bounds.append(time(int(m.group(1)), int(m.group(2))))
    tz = str(value.get("tz", "UTC"))
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        problems.add(line_of(value, "tz", line), f"unknown time zone {tz!r}")
        tz = "UTC"
    return TimeWindow(tuple(d.lower()[:3] for d in days), bounds[0], bounds[1], tz)


def _arg_conditions(value: Any, line: int, problems: _Problems) -> tuple[ArgCondition, ...]:
    if not isinstance(value, Mapping):
        problems.add(
            line, "when.args maps argument names to predicates, e.g. {amount: {above: 1000}}"
        )
        return ()
    out = []
    for name, preds in value.items():
        at = line_of(value, name, line)
        if not isinstance(preds, Mapping) or not preds:
            problems.add(at, f"argument {name!r}: give predicates like {{above: 100}}")
            continue
        ops: list[tuple[str, Any]] = []
        for op, want in preds.items():
            op_line = line_of(preds, op, at)
            if op not in _ARG_OPS:
                problems.add(op_line, f"unknown predicate {op!r}; use one of {', '.join(_ARG_OPS)}")
            elif op in ("above", "below", "at_least", "at_most", "count_above") and (
                not isinstance(want, int | float) or isinstance(want, bool)
            ):
                problems.add(op_line, f"{op} needs a number, got {want!r}")
            elif op == "outside_domains" and _strings(want) is None:
                problems.add(op_line, "outside_domains needs a list of domains")
            elif op == "matches":
                try:
                    re.compile(str(want))
                except re.error as exc:
                    problems.add(op_line, f"invalid regular expression {want!r}: {exc}")
                    continue
                ops.append((op, str(want)))
            elif op in ("in", "not_in") and not isinstance(want, list):
                problems.add(op_line, f"{op} needs a list")
            elif op == "present" and not isinstance(want, bool):
                problems.add(op_line, "present needs true or false")
            else:
                ops.append((op, list(_strings(want) or ()) if op == "outside_domains" else want))
        out.append(ArgCondition(str(name), tuple(ops)))
    return tuple(out)


def _risk_value(value: Any) -> Risk | None:
    try:
        return Risk(str(value))
    except ValueError:
        return None


def _scope(value: Any, line: int, problems: _Problems) -> tuple[str, str | None, str | None]:
    if value in (None, "org"):
        return "org", None, None
    if isinstance(value, Mapping) and len(value) == 1:
        ((kind, name),) = value.items()
        if kind in ("department", "agent") and isinstance(name, str) and name:
            return (kind, name, None) if kind == "department" else (kind, None, name)
    problems.add(line, "scope must be org, {department: NAME} or {agent: ID}")
    return "org", None, None


def _parse_rule(
    raw: Any, index: int, path: Path, scope: tuple[str, str | None, str | None], problems: _Problems
) -> Rule | None:
    if not isinstance(raw, LineDict):
        problems.add(line_of(raw), f"rule {index + 1} must be a mapping")
        return None
    line = raw.line
    for key in sorted(set(raw) - _RULE_KEYS, key=str):
        problems.add(
            line_of(raw, key), f"unknown rule key {key!r}; known: {', '.join(sorted(_RULE_KEYS))}"
        )
    rule_id = str(raw.get("id") or f"{path.stem}#{index + 1}")
    decision = raw.get("decision")
    try:
        effect = Effect(str(decision))
    except ValueError:
        problems.add(
            line_of(raw, "decision"),
            f"rule {rule_id}: decision must be allow, deny or require_approval, got {decision!r}",
        )
        effect = Effect.deny
    level, department, agent = scope
    if "department" in raw:
        level, department = "department", str(raw["department"])
    if "agent" in raw:
        level, agent = "agent", str(raw["agent"])
    actions = _strings(raw.get("action", []))
    if actions is None:
        problems.add(line_of(raw, "action"), f"rule {rule_id}: action must be a glob or a list")
        actions = ()
    risks_raw = _strings(raw.get("risk", []))
    risks: list[Risk] = []
    for r in risks_raw or ():
        risk = _risk_value(r)
        if risk is None:
            problems.add(
                line_of(raw, "risk"),
                f"rule {rule_id}: unknown risk tier {r!r}; use {', '.join(x.value for x in Risk)}",
            )
        else:
            risks.append(risk)
    if risks_raw is None:
        problems.add(line_of(raw, "risk"), f"rule {rule_id}: risk must be a tier or a list")
    when = raw.get("when", {})
    args: tuple[ArgCondition, ...] = ()
    provenance = None
    untrusted: tuple[str, ...] = ()
    within = outside = None
    if not isinstance(when, Mapping):
        problems.add(line_of(raw, "when"), f"rule {rule_id}: when must be a mapping")
    else:
        wl = line_of(raw, "when")
        for key in sorted(set(when) - _WHEN_KEYS, key=str):
            problems.add(
                line_of(when, key, wl),
                f"unknown condition {key!r}; known: {', '.join(sorted(_WHEN_KEYS))}",
            )
        if "args" in when:
            args = _arg_conditions(when["args"], line_of(when, "args", wl), problems)
        if "provenance" in when:
            provenance = str(when["provenance"])
            if provenance not in ("trusted", "untrusted"):
                problems.add(
                    line_of(when, "provenance", wl), "provenance must be trusted or untrusted"
                )
        if "untrusted_args" in when:
            untrusted = _strings(when["untrusted_args"]) or ()
            if not untrusted:
                problems.add(
                    line_of(when, "untrusted_args", wl), "untrusted_args needs argument names"
                )
        if "within" in when:
            within = _window(when["within"], line_of(when, "within", wl), problems)
        if "outside" in when:
            outside = _window(when["outside"], line_of(when, "outside", wl), problems)
    expires = DEFAULT_EXPIRY
    if "expires" in raw:
        parsed = parse_duration(raw["expires"])
        if parsed is None:
            problems.add(line_of(raw, "expires"), "expires must be a duration like 30m, 2h, 7d")
        else:
            expires = parsed
    trust = raw.get("trust_tool_output", False)
    if not isinstance(trust, bool):
        problems.add(line_of(raw, "trust_tool_output"), "trust_tool_output must be true or false")
        trust = False
    return Rule(
        rule_id,
        effect,
        level,
        department,
        agent,
        tuple(actions),
        tuple(risks),
        args,
        provenance,
        untrusted,
        within,
        outside,
        str(raw.get("reason", "")),
        f"{path}:{line}",
        expires,
        trust,
    )


def parse_policy(text: str, path: Path, into: PolicySet, problems: _Problems) -> None:
    try:
        loaded = yamlfile.load(text)
    except yamlfile.YamlSyntaxError as exc:
        problems.add(exc.line, f"not valid YAML: {exc.problem}")
        return
    for line, message in loaded.duplicates:
        problems.add(line, message)
    data = loaded.data
    if data is None:
        return
    if not isinstance(data, LineDict):
        problems.add(1, "a policy file is a mapping with a rules list")
        return
    for key in sorted(set(data) - _FILE_KEYS, key=str):
        problems.add(
            line_of(data, key), f"unknown key {key!r}; known: {', '.join(sorted(_FILE_KEYS))}"
        )
    scope = _scope(data.get("scope"), line_of(data, "scope"), problems)
    level, department, agent = scope
    for pattern in _strings(data.get("allow_external", [])) or ():
        into.rules.append(
            Rule(
                f"allow_external:{pattern}",
                Effect.allow,
                level,
                department,
                agent,
                (pattern,),
                (Risk.external,),
                reason=f"{pattern} is allow-listed for external use",
                source=f"{path}:{line_of(data, 'allow_external')}",
            )
        )
    if _strings(data.get("allow_external", [])) is None:
        problems.add(line_of(data, "allow_external"), "allow_external must be a list of globs")
    trusted = _strings(data.get("trusted_outputs", []))
    if trusted is None:
        problems.add(line_of(data, "trusted_outputs"), "trusted_outputs must be a list of globs")
    else:
        into.trusted_outputs += trusted
    guard = data.get("guardrails", {})
    if not isinstance(guard, Mapping):
        problems.add(line_of(data, "guardrails"), "guardrails must be a mapping")
    else:
        for key, value in guard.items():
            at = line_of(guard, key, line_of(data, "guardrails"))
            risk = _risk_value(value)
            if key not in ("tainted_origin", "tainted_args"):
                problems.add(at, f"unknown guardrail {key!r}; known: tainted_origin, tainted_args")
            elif risk is None:
                problems.add(at, f"{key} takes the lowest risk tier it applies to, got {value!r}")
            elif level != "org":
                problems.add(at, "guardrails are set at org scope only")
            else:
                setattr(into, key, risk)
    rules = data.get("rules", [])
    if not isinstance(rules, list):
        problems.add(line_of(data, "rules"), "rules must be a list")
        return
    seen = {r.id: r.source for r in into.rules}
    for index, raw in enumerate(rules):
        rule = _parse_rule(raw, index, path, scope, problems)
        if rule is None:
            continue
        if rule.id in seen:
            problems.add(line_of(raw), f"rule id {rule.id} is already used at {seen[rule.id]}")
        seen[rule.id] = rule.source
        into.rules.append(rule)


def policy_files(paths: Iterable[str | Path]) -> list[Path]:
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted([*p.glob("*.yaml"), *p.glob("*.yml")])
        else:
            out.append(p)
    return out


def load_policies(paths: Iterable[str | Path]) -> PolicySet:
    """Read and validate policy files (directories: their *.yaml); raises PolicyError."""
    policies = PolicySet()
    problems: list[str] = []
    for path in policy_files(paths):
        collector = _Problems(str(path))
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            collector.add(1, f"cannot read: {exc.strerror or exc}")
        except UnicodeDecodeError as exc:
            problems.append(f"{not_utf8(path, exc).args[0]} (save it as UTF-8)")
        else:
            parse_policy(text, path, policies, collector)
        problems += collector.items
        policies.files.append(str(path))
    if problems:
        raise PolicyError(problems)
    return policies
