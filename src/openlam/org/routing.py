"""Routing: which department and which agent should own a goal.

Two ways, one answer type (:class:`Route`):

* :func:`route` — deterministic scoring, no model. BM25 over each department's name,
  description, keywords and job titles, and over each agent's title and instructions;
  plus whether the agent's permitted actions cover the actions the goal implies
  ("refund" → the installed actions matching ``payments.*refund*``; "commit" → the actions
  of a configured git server). A goal that needs a configured source — it names the
  source, or a word only that source's actions have — goes to an agent that may use it.
  Microseconds to milliseconds per goal.
* :func:`route_with_model` — the chief of staff asks a model to pick from a compact
  shortlist (the scoring's top candidates) and falls back to scoring on any bad answer.

Either way, an agent's learned record on goals of the same kind (its runs that
completed or failed, :data:`WEIGHT_RECORD`) weighs its score when the caller gives the
records: routing prefers agents whose runs of that kind succeed. The reason says who
was chosen and why.
"""

from __future__ import annotations

import asyncio
import fnmatch
import functools
import math
import re
import weakref
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from openlam.actions.grants import SourceAccess
from openlam.org.loader import Catalog
from openlam.org.model import Agent, Department

# -- text ---------------------------------------------------------------------------------

STOPWORDS = frozenset(
    """
a about above after again all also am an and any are as at be been before being below
between both but by can could did do does doing done down during each etc few for from
further get gets got had has have having he her here hers him his how i if in into is it
its itself just let me more most my need needs no nor not now of off on once only or other
our ours out over own please same she should so some such than that the their them then
there these they this those through to too under until up us very via want wants was we
were what when where which while who whom why will with would you your yours
help make sure kindly asap today tomorrow
one two three four five six seven eight nine ten
""".split()
)

_WORD = re.compile(r"[A-Za-z0-9]+(?:'[A-Za-z]+)?")
_SUFFIXES = (
    "izations",
    "ization",
    "ations",
    "ation",
    "ments",
    "ment",
    "ances",
    "ance",
    "ities",
    "ity",
    "ating",
    "ings",
    "ing",
    "ates",
    "ated",
    "ate",
    "ers",
    "er",
    "ies",
    "ied",
    "ed",
    "es",
    "ly",
    "s",
)
_DOUBLE_KEEP = frozenset("lsfz")


def stem(word: str) -> str:
    """A light, deterministic suffix stripper: invoice/invoices/invoicing/invoiced →
    ``invoic``; recruit/recruiting/recruiter → ``recruit``; planning → ``plan``."""
    if len(word) <= 3 or word.isdigit():
        return word
    base = word
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            if suffix == "s" and word.endswith(("ss", "us", "is")):
                break
            base = word[: -len(suffix)]
            if suffix in ("ies", "ied", "ities", "ity") and len(base) >= 3:
                base = base + ("i" if suffix in ("ies", "ied") else "")
            break
    if (
        len(base) > 3
        and base[-1] == base[-2]
        and base[-1] not in "aeiou"
        and base[-1] not in _DOUBLE_KEEP
    ):
        base = base[:-1]
    if base.endswith("e") and len(base) > 3:
        base = base[:-1]
    if base.endswith("y") and len(base) > 3:
        base = base[:-1] + "i"
    return base


def words(text: str) -> list[tuple[str, str]]:
    """(surface word, stem) for each meaningful word. An all-capitals acronym (IT, PR,
    HR) survives even when its lower-case form is a stop word."""
    out = []
    for match in _WORD.finditer(text):
        raw = match.group(0)
        raw = raw[:-2] if raw.lower().endswith("'s") else raw
        lower = raw.lower()
        acronym = raw.isupper() and 2 <= len(raw) <= 4 and raw.isalpha()
        if not acronym and (lower in STOPWORDS or len(lower) < 2):
            continue
        out.append((raw, stem(lower)))
    return out


def tokens(text: str) -> list[str]:
    return [s for _, s in words(text)]


# -- actions a goal implies -------------------------------------------------------------------


@dataclass(frozen=True)
class ActionHint:
    label: str
    triggers: frozenset[str]  # stems
    actions: tuple[str, ...]  # installed action names; any of them satisfies the hint
    source: bool = False  # a configured source's: only agents it is granted to can do it


@dataclass(frozen=True)
class _Wanted:
    label: str
    triggers: str
    patterns: str  # globs over action names, resolved against the installed ones


# What goal words imply, over the built-in plugins' actions. The globs are matched
# against the installed actions, so a hint never names an action that does not exist.
WANTED: tuple[_Wanted, ...] = (
    _Wanted("email", "email emails mail inbox newsletter", "email.*"),
    _Wanted("invoice", "invoice invoices invoicing", "payments.*invoice*"),
    _Wanted("refund", "refund refunds refunded", "payments.*refund*"),
    _Wanted("payment link", "checkout paylink", "payments.*payment_link*"),
    _Wanted(
        "CRM",
        "crm contact contacts lead leads deal deals opportunity pipeline prospect prospects",
        "crm.*",
    ),
    _Wanted("Slack", "slack", "social.slack*"),
    _Wanted("Discord", "discord", "social.discord*"),
    _Wanted("Mattermost", "mattermost", "social.mattermost*"),
    _Wanted("Mastodon", "mastodon toot toots fediverse", "social.mastodon*"),
    _Wanted("PDF", "pdf", "documents.*pdf*"),
    _Wanted("CSV", "csv spreadsheet spreadsheets", "documents.*csv*"),
    _Wanted("web search", "google online internet", "search.web"),
    _Wanted("web page", "website webpage url urls", "web.fetch browser.open"),
    _Wanted("browser", "screenshot screenshots browser", "browser.*"),
)

# Words of action names too common to say which source a goal needs.
GENERIC_ACTION_WORDS = frozenset(
    stem(w)
    for w in """
get list show create add update delete remove set read write find search send post put
patch make new run call fetch do check view open close start stop info data item items
record records value values by all one current use user users id ids name names status
state type types detail details
""".split()
)


def action_hints(
    installed: Iterable[str], access: Iterable[SourceAccess] = ()
) -> tuple[ActionHint, ...]:
    """The hints for a workspace: built-in ones resolved against the installed actions
    (dropped when nothing matches), and one per configured source whose actions are known,
    triggered by its name or by the words of its action names that no other installed
    action has (``commit`` for a git server; not ``get``, not ``log`` if the CRM logs)."""
    names = sorted(set(installed))
    access = list(access)
    theirs = {n for source in access for n, _ in source.actions}
    elsewhere = frozenset(
        s for n in names if n not in theirs for _, s in words(n.replace("_", " ").replace(".", " "))
    )
    hints = []
    for wanted in WANTED:
        matched = tuple(
            n for n in names if any(fnmatch.fnmatchcase(n, p) for p in wanted.patterns.split())
        )
        if matched:
            hints.append(
                ActionHint(
                    wanted.label, frozenset(stem(w) for w in wanted.triggers.split()), matched
                )
            )
    for source in access:
        if not source.actions:
            continue
        named = frozenset(s for _, s in words(source.name.replace("-", " ")))
        local = " ".join(n.split(".", 1)[1] for n, _ in source.actions).replace("_", " ")
        distinctive = frozenset(s for _, s in words(local)) - GENERIC_ACTION_WORDS - elsewhere
        hints.append(
            ActionHint(
                source.name, named | distinctive, tuple(n for n, _ in source.actions), source=True
            )
        )
    return tuple(hints)


@functools.cache
def shipped_action_names() -> tuple[str, ...]:
    """The actions of the installed plugins (for routing without a workspace's registry)."""
    import tempfile

    from openlam.actions.registry import ActionRegistry, load_plugins
    from openlam.config import load_settings

    with tempfile.TemporaryDirectory() as empty:  # no workspace: no configured sources
        registry = load_plugins(ActionRegistry(), settings=load_settings(empty))
    return tuple(s.name for s in registry)


def implied_actions(
    goal_stems: Iterable[str], hints: Iterable[ActionHint] | None = None
) -> list[ActionHint]:
    present = set(goal_stems)
    chosen = action_hints(shipped_action_names()) if hints is None else hints
    return [h for h in chosen if h.triggers & present]


def permits(
    agent: Agent, action_names: Iterable[str], patterns: Iterable[str] | None = None
) -> bool:
    from openlam.actions.registry import permitted_by

    allowed = tuple(agent.actions if patterns is None else patterns)
    return any(permitted_by(allowed, n) for n in action_names)  # "!pattern" excludes


# -- BM25 -----------------------------------------------------------------------------------


class _BM25:
    K1 = 1.2
    B = 0.75

    def __init__(self, docs: Sequence[list[str]]) -> None:
        self.size = len(docs)
        avg = (sum(len(d) for d in docs) / len(docs)) if docs else 1.0
        self.postings: dict[str, list[tuple[int, float]]] = {}
        for i, doc in enumerate(docs):
            norm = self.K1 * (1 - self.B + self.B * len(doc) / avg)
            for term, f in Counter(doc).items():
                self.postings.setdefault(term, []).append((i, f * (self.K1 + 1) / (f + norm)))
        n = len(docs)
        self.idf = {
            t: math.log(1 + (n - len(p) + 0.5) / (len(p) + 0.5)) for t, p in self.postings.items()
        }

    def scores(self, query: Iterable[str]) -> list[float]:
        out = [0.0] * self.size
        for term in set(query):
            idf = self.idf.get(term)
            if idf is None:
                continue
            for i, weight in self.postings[term]:
                out[i] += idf * weight
        return out

    def matched(self, query: Iterable[str]) -> dict[int, list[str]]:
        """Document → the query terms found in it, most distinctive first."""
        found: dict[int, list[str]] = {}
        for term in sorted(set(query) & self.idf.keys(), key=lambda t: (-self.idf[t], t)):
            for i, _ in self.postings[term]:
                found.setdefault(i, []).append(term)
        return found


# -- the router -------------------------------------------------------------------------------

WEIGHT_DEPARTMENT = 1.0
WEIGHT_ROLE = 0.7
WEIGHT_ACTIONS = 0.4
WEIGHT_RECORD = 0.5
"""How much an agent's record on goals of this kind (learned: see docs/learning.md) moves
its score: ``WEIGHT_RECORD * (2r - 1)`` with ``r = (successes + 1) / (runs + 2)``, so 0
with no history, -0.3 after 0 of 3 runs succeeded, +0.3 after 3 of 3."""

Records = Mapping[str, tuple[int, int]]  # agent id → (successes, failures) on this kind


def record_weight(successes: int, failures: int) -> float:
    rate = (successes + 1) / (successes + failures + 2)  # few runs say little
    return WEIGHT_RECORD * (2 * rate - 1)


@dataclass(frozen=True)
class Candidate:
    agent: Agent
    department: Department
    score: float
    department_score: float  # 0..1, relative to the best department
    role_score: float  # 0..1, relative to the best agent
    action_cover: float  # share of the implied actions this agent may use
    department_words: tuple[str, ...] = ()
    role_words: tuple[str, ...] = ()
    covered: tuple[str, ...] = ()  # labels of implied actions it may use
    missing: tuple[str, ...] = ()  # labels of implied actions it may not use
    lacks_needed: bool = False  # the goal names a source whose actions it may not use
    record: tuple[int, int] | None = None  # its (successes, failures) on this kind of goal
    record_score: float = 0.0  # what the record added to (or took from) the score


@dataclass(frozen=True)
class Route:
    agent: Agent
    department: Department
    score: float
    reason: str
    method: str = "scoring"  # scoring | model | fallback
    candidates: tuple[Candidate, ...] = field(default=(), repr=False)


class Router:
    """A scoring index over one catalog; build once, route many goals. ``installed``: the
    names of the workspace's actions (default: the installed plugins' and the configured
    sources' known actions)."""

    def __init__(self, catalog: Catalog, installed: Iterable[str] | None = None) -> None:
        self.catalog = catalog
        names = list(shipped_action_names() if installed is None else installed)
        self.hints = action_hints(names, catalog.access)
        self.departments = [d for d in catalog.departments.values() if catalog.members(d.id)]
        self._dept_index = {d.id: i for i, d in enumerate(self.departments)}
        dept_docs = []
        for dept in self.departments:
            titles = " ".join(a.title for a in catalog.members(dept.id))
            dept_docs.append(
                tokens(dept.name) * 3
                + tokens(dept.description)
                + tokens(" ".join(dept.keywords)) * 2
                + tokens(titles)
            )
        self._dept_bm25 = _BM25(dept_docs)
        self.agents = list(catalog.agents.values())
        self._agent_bm25 = _BM25(
            [tokens(a.title) * 3 + tokens(a.instructions) for a in self.agents]
        )
        self._depth = {a.id: len(catalog.chain(a.id)) for a in self.agents}
        self._permits = {
            h.label: frozenset(
                a.id for a in self.agents if permits(a, h.actions, catalog.permitted_patterns(a.id))
            )
            for h in self.hints
        }

    def rank(
        self, goal: str, department: str | None = None, records: Records | None = None
    ) -> list[Candidate]:
        """Every agent (of ``department``, if given) with its score, best first.
        ``records``: each agent's (successes, failures) on goals of this kind — learned
        from its runs; an agent without history keeps its score."""
        surface = words(goal)
        query = [s for _, s in surface]
        word_of: dict[str, str] = {}
        for raw, s in surface:
            word_of.setdefault(s, raw)
        hints = implied_actions(query, self.hints)
        needed = [h for h in hints if h.source]

        dept_raw = self._dept_bm25.scores(query)
        agent_raw = self._agent_bm25.scores(query)
        dept_terms = self._dept_bm25.matched(query)
        agent_terms = self._agent_bm25.matched(query)
        dept_top = max(dept_raw, default=0.0) or 1.0
        agent_top = max(agent_raw, default=0.0) or 1.0
        only = self.catalog.department(department).id if department else None

        out = []
        for i, agent in enumerate(self.agents):
            if only is not None and agent.department != only:
                continue
            d = self._dept_index.get(agent.department)
            d_score = dept_raw[d] / dept_top if d is not None else 0.0
            r_score = agent_raw[i] / agent_top
            covered = tuple(h.label for h in hints if agent.id in self._permits[h.label])
            missing = tuple(h.label for h in hints if agent.id not in self._permits[h.label])
            lacks = any(agent.id not in self._permits[h.label] for h in needed)
            cover = len(covered) / len(hints) if hints else 0.0
            score = WEIGHT_DEPARTMENT * d_score + WEIGHT_ROLE * r_score + WEIGHT_ACTIONS * cover
            record = (records or {}).get(agent.id)
            adjust = record_weight(*record) if record and score > 0 else 0.0
            out.append(
                Candidate(
                    agent=agent,
                    department=self.catalog.departments[agent.department],
                    score=round(max(score + adjust, 0.001) if score > 0 else score, 6),
                    department_score=d_score,
                    role_score=r_score,
                    action_cover=cover,
                    department_words=tuple(word_of[t] for t in dept_terms.get(d, ()))
                    if d is not None
                    else (),
                    role_words=tuple(word_of[t] for t in agent_terms.get(i, ())),
                    covered=covered,
                    missing=missing,
                    lacks_needed=lacks,
                    record=record,
                    record_score=adjust,
                )
            )
        # Agents that may use a source the goal names first; then best score; on a tie
        # the more senior agent (who can delegate), then by id.
        out.sort(key=lambda c: (c.lacks_needed, -c.score, self._depth[c.agent.id], c.agent.id))
        return out

    def route(
        self, goal: str, department: str | None = None, records: Records | None = None
    ) -> Route:
        ranked = self.rank(goal, department, records)
        if not ranked:
            raise ValueError("the catalog has no agents to route to")
        given = self.catalog.department(department) if department else None
        best = ranked[0]
        if best.score <= 0:
            keeper = (self.catalog.head(given.id) if given else None) or self.catalog.router
            dept = self.catalog.departments[keeper.department]
            where = f"in {given.name} " if given else ""
            reason = (
                f"{_who(keeper, dept)} keeps the goal: no role {where}matched its words, "
                "so it needs to be clarified or split before anyone can own it."
            )
            return Route(keeper, dept, 0.0, reason, "scoring", tuple(ranked))
        return Route(
            best.agent,
            best.department,
            best.score,
            _reason(best, ranked, given),
            "scoring",
            tuple(ranked),
        )

    def shortlist(
        self, goal: str, k: int = 6, department: str | None = None, records: Records | None = None
    ) -> list[Candidate]:
        """The top ``k`` candidates; with no signal at all, every department's head."""
        ranked = self.rank(goal, department, records)
        if ranked and not ranked[0].lacks_needed and any(c.lacks_needed for c in ranked):
            return [c for c in ranked if not c.lacks_needed][:k]  # only who may do the work
        if ranked and ranked[0].score > 0:
            return ranked[:k]
        heads = {h.id for d in self.departments if (h := self.catalog.head(d.id)) is not None}
        heads.add(self.catalog.router.id)
        return [c for c in ranked if c.agent.id in heads]


def _who(agent: Agent, dept: Department) -> str:
    return f"{agent.name} ({agent.id}, {agent.title}, {dept.name})"


def _quoted(items: Sequence[str], limit: int = 4) -> str:
    shown = [f"“{w}”" for w in items[:limit]]
    if len(shown) <= 1:
        return "".join(shown)
    return ", ".join(shown[:-1]) + " and " + shown[-1]


def _reason(best: Candidate, ranked: list[Candidate], given: Department | None) -> str:
    parts = []
    if given is not None:
        parts.append(f"the department {given.name} was given")
    elif best.department_words:
        many = len(best.department_words) > 1
        parts.append(
            f"the goal's {'words' if many else 'word'} "
            f"{_quoted(best.department_words)} {'match' if many else 'matches'} "
            f"{best.department.name}'s remit"
        )
    if best.role_words:
        verb = "match" if len(best.role_words) > 1 else "matches"
        parts.append(f"{_quoted(best.role_words, 3)} {verb} this role")
    if best.covered:
        parts.append(f"it may use the actions the goal implies ({', '.join(best.covered)})")
    if not best.lacks_needed and any(c.lacks_needed for c in ranked):
        parts.append(
            "the goal needs a source of actions that only some agents may use, and this agent may"
        )
    if best.record is not None:
        parts.append(f"its runs of this kind of goal: {_record(best.record)}")
    unaided = min(ranked, key=lambda c: (c.lacks_needed, -(c.score - c.record_score)))
    if unaided.agent.id != best.agent.id and unaided.record is not None:
        parts.append(
            f"preferred over {unaided.agent.name} ({unaided.agent.id}), whose runs "
            f"of this kind went worse: {_record(unaided.record)}"
        )
    if best.missing:
        parts.append(
            f"it is not permitted {', '.join(best.missing)}, which the goal implies, "
            "so it will need to delegate that part"
        )
    text = f"Chose {_who(best.agent, best.department)}: " + "; ".join(parts or ["best match"])
    runner = next((c for c in ranked[1:] if c.department.id != best.department.id), None)
    if given is None and runner is not None and runner.score > 0:
        text += (
            f". Next best department: {runner.department.name} "
            f"({runner.agent.id}, score {runner.score:.2f} against {best.score:.2f})"
        )
    return text + "."


def _record(record: tuple[int, int]) -> str:
    successes, failures = record
    return f"{successes} of {successes + failures} succeeded"


_ROUTERS: weakref.WeakKeyDictionary[Catalog, Router] = weakref.WeakKeyDictionary()


def router_for(catalog: Catalog, installed: Iterable[str] | None = None) -> Router:
    router = _ROUTERS.get(catalog)
    if router is None or installed is not None:
        router = _ROUTERS[catalog] = Router(catalog, installed)
    return router


def route(
    goal: str,
    catalog: Catalog,
    *,
    department: str | None = None,
    installed: Iterable[str] | None = None,
    records: Records | None = None,
) -> Route:
    """Deterministic routing: the best-scoring agent (within ``department`` if given),
    weighed by each agent's ``records`` on goals of this kind when given."""
    return router_for(catalog, installed).route(goal, department, records)


# -- model-assisted ---------------------------------------------------------------------------

Ask = Callable[[str], Awaitable[str]]


def shortlist_prompt(goal: str, shortlist: Sequence[Candidate]) -> str:
    lines = [
        "You are the chief of staff of a company's workforce of agents. Choose the ONE "
        "agent who should own the goal below: the person whose job it most clearly is.",
        "",
        f"Goal: {' '.join(goal.split())}",
        "",
        "Candidates (id | title | department | remit"
        + (" | its runs of this kind of goal" if any(c.record for c in shortlist) else "")
        + "):",
    ]
    for c in shortlist:
        remit = c.agent.instructions.split(". ")[0].rstrip(".")
        line = f"- {c.agent.id} | {c.agent.title} | {c.department.name} | {remit[:160]}"
        if any(c.record for c in shortlist):
            line += f" | {_record(c.record) if c.record else 'none yet'}"
        lines.append(line)
    lines += [
        "",
        'Answer with JSON only: {"agent": "<one id from the list>", '
        '"reason": "<one sentence: why this agent>"}',
    ]
    return "\n".join(lines)


def parse_choice(answer: str, ids: Iterable[str]) -> tuple[str | None, str]:
    """(chosen id or None, the model's reason) from a model's answer (its reasoning, if
    it shows any, is not read: it names agents it considered and rejected)."""
    from openlam.loop.reply_json import json_in, without_reasoning

    allowed = set(ids)
    data = json_in(answer, lambda v: isinstance(v, dict) and ("agent" in v or "id" in v))
    if data is not None:
        pick = data.get("agent") or data.get("id")
        why = data.get("reason")
        if isinstance(pick, str) and pick.strip() in allowed:
            return pick.strip(), " ".join(str(why or "").split())[:240]
        return None, ""
    text = without_reasoning(answer)
    named = {w for w in re.findall(r"[a-z][a-z0-9_]*", text) if w in allowed}
    if len(named) == 1:
        return named.pop(), ""
    return None, ""


async def route_with_model(
    goal: str,
    catalog: Catalog,
    ask: Ask,
    *,
    k: int = 6,
    department: str | None = None,
    timeout: float | None = None,
    installed: Iterable[str] | None = None,
    records: Records | None = None,
) -> Route:
    """Ask a model to pick from the scoring's shortlist; fall back to scoring when the
    model fails, times out, or names no agent from the shortlist. With one candidate
    there is nothing to ask. ``records`` weigh the scoring and are shown to the model."""
    router = router_for(catalog, installed)
    scored = router.route(goal, department, records)
    shortlist = router.shortlist(goal, k, department, records)
    if len(shortlist) <= 1:
        return scored
    try:
        pending = ask(shortlist_prompt(goal, shortlist))
        answer = await (asyncio.wait_for(pending, timeout) if timeout else pending)
    except Exception as exc:  # any failure of the model means: use the scoring
        problem = " ".join(str(exc).split())[:160] or type(exc).__name__
        return replace(
            scored,
            method="fallback",
            reason=f"The model could not be asked ({problem}); scoring decided. {scored.reason}",
        )
    if not isinstance(answer, str):
        answer = str(answer)
    choice, why = parse_choice(answer, (c.agent.id for c in shortlist))
    if choice is None:
        return replace(
            scored,
            method="fallback",
            reason="The model's answer named no agent from the shortlist; scoring "
            f"decided. {scored.reason}",
        )
    picked = next(c for c in shortlist if c.agent.id == choice)
    reason = (
        f"Chose {_who(picked.agent, picked.department)} — picked by the model from a "
        f"shortlist of {len(shortlist)}"
    )
    reason += f": {why.rstrip('.')}." if why else "."
    if picked.agent.id == scored.agent.id:
        reason += " The scoring agrees."
    else:
        reason += (
            f" The scoring alone would have chosen {scored.agent.name} "
            f"({scored.agent.id}, {scored.department.name})."
        )
    return Route(picked.agent, picked.department, picked.score, reason, "model", scored.candidates)
