"""The learning loop's two hooks: *consult* before the first plan, *learn* after the
outcome.

consult(perception) → a :class:`Consultation`:

* a **replay**: a playbook of the goal's shape whose pattern matches the goal, whose
  parameters pass their type checks, whose actions are all installed and permitted to
  the agent, and which has not failed :data:`~openlam.learning.store.DEMOTE_AFTER`
  times in a row. The runner validates and runs its plan like a model's — no model
  request;
* otherwise **advice** for the planner's prompt: lessons people taught this agent about
  the actions it may use, actions that often fail, and the closest successful plans
  (recall) — within :data:`ADVICE_CHARS`.

learn(outcome, experience) → playbooks (from runs where every step succeeded, every
action that can verify its effect did, and no approval was denied or edited), replay
successes and failures, lessons from denied and edited approvals and answered
questions, and tool reliability.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from openlam.learning.gist import assign
from openlam.learning.literals import TYPES, literals, shape
from openlam.learning.playbooks import Playbook, generalise
from openlam.learning.review import private
from openlam.learning.store import DEMOTE_AFTER, LearningStore
from openlam.loop.state import SPECIAL_ACTIONS, Outcome, RunStatus, StepStatus
from openlam.memory.engines import db_work

if TYPE_CHECKING:
    from openlam.actions.registry import ActionRegistry
    from openlam.loop.perceive import Perception

ADVICE_CHARS = 2400  # ≈ 600 tokens of the planning prompt at most
UNRELIABLE_BELOW = 0.8  # success rate under which the planner is warned …
UNRELIABLE_AFTER = 5  # … once an action has been called this many times
RECALLED = 2  # closest successful plans shown to the model
RECALL_SCAN = 100  # recall looks among this many most recently used playbooks (bounded cost)
LESSONS_SHOWN = 6
CAN_DO_SHOWN = 8  # learned goal shapes named when a goal cannot be done offline
_NAMED = re.compile(r"<p\d+:(\w+)>")
SERVERS = ("mcp:", "openapi:")  # sources whose actions fail together when they are down
# A run ending so counts for or against its agent on goals of its kind (partial, blocked
# and cancelled runs say more about the goal or the person than about the agent).
RECORDED = (RunStatus.completed, RunStatus.failed)
_EMAIL = re.compile(TYPES["email"])


@dataclass
class Consultation:
    plan: dict[str, Any] | None = None
    playbook: str | None = None
    why: str = ""
    advice: list[str] = field(default_factory=list)
    learned: list[str] = field(default_factory=list)  # shapes it can do with no model

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class Learner:
    def __init__(self, url: str, registry: ActionRegistry, redact: Any = lambda v: v) -> None:
        self.url = url
        self.store = LearningStore(url)
        self.registry = registry
        self.redact = redact

    # -- before planning -------------------------------------------------------------

    async def consult(self, p: Perception) -> dict[str, Any]:
        return (await db_work(self.store.engine, self.consult_now, p)).to_dict()

    def consult_now(self, p: Perception) -> Consultation:
        found = literals(p.goal)
        goal_shape = shape(p.goal, found)
        for pb in self.store.candidates(goal_shape):
            exact = pb.shape == goal_shape
            values = pb.extract(p.goal) if exact else assign(pb.example, pb.params, p.goal)
            if values is None:
                continue
            missing = [a for a in pb.actions if a not in SPECIAL_ACTIONS and a not in p.actions]
            if missing:
                continue
            how = "matches" if exact else "is a rewording (same words and typed values) of"
            why = (
                f'the goal {how} playbook {pb.id} ("{pb.example}"), learned from '
                f"{len(pb.runs)} run(s) with {pb.successes} success(es), "
                f"{pb.failures} failure(s); parameters: "
                + ", ".join(f"{k}={_masked(v)} ({pb.params[k]})" for k, v in values.items())
            )
            return Consultation(plan={"steps": pb.instantiate(values)}, playbook=pb.id, why=why)
        recent, lessons, reliability = self.store.consult_reads(
            p.agent.id, lessons=50, playbooks=RECALL_SCAN
        )
        return Consultation(
            advice=self.advice(p, goal_shape, recent, lessons, reliability),
            learned=self.can_do(p, recent),
        )

    def can_do(self, p: Perception, recent: list[Playbook]) -> list[str]:
        """The goal shapes the agent can do with no model (its active playbooks among
        the latest used, most successful first), as "write <text> to <file>"."""
        permitted = {s.name for s in p.actions} | set(SPECIAL_ACTIONS)
        shapes: dict[str, int] = {}
        for pb in recent:
            if pb.failing < DEMOTE_AFTER and set(pb.actions) <= permitted:
                shown = _NAMED.sub(r"<\1>", pb.example)
                shapes[shown] = max(shapes.get(shown, 0), pb.successes)
        return sorted(shapes, key=lambda k: -shapes[k])[:CAN_DO_SHOWN]

    def advice(
        self,
        p: Perception,
        goal_shape: str,
        recent: list[Playbook],
        lessons: list[dict[str, Any]],
        stats: list[dict[str, Any]],
    ) -> list[str]:
        """Lessons, unreliable actions and sources, and the closest playbooks, most
        important first, within ``ADVICE_CHARS``; ``stats`` as
        :meth:`LearningStore.consult_reads` gives them."""
        permitted = {s.name for s in p.actions}
        lines = [
            f"Lesson from a person about {ls['action']}: {ls['text']}"
            for ls in lessons
            if ls["action"] in permitted or ls["action"] in SPECIAL_ACTIONS
        ][:LESSONS_SHOWN]
        for t in stats:
            if t["action"] in permitted and _unreliable(t):
                lines.append(
                    f"Unreliable action {t['action']}: {t['calls'] - t['failures']} of "
                    f"{t['calls']} recent calls succeeded" + _commonest(t)
                )
        used = {t["source"] for t in stats if t["action"] in permitted}
        for s in self.store.source_stats(stats):  # a server that is down fails all its tools
            if s["source"] in used and s["source"].startswith(SERVERS) and _unreliable(s):
                lines.append(
                    f"Unreliable source {s['source']} ({s['actions']} actions): "
                    f"{s['calls'] - s['failures']} of {s['calls']} recent calls "
                    "succeeded" + _commonest(s)
                )
        lines += self.recall(goal_shape, permitted, recent)
        kept, used = [], 0
        for line in lines:  # the budget: the most important first
            if used + len(line) > ADVICE_CHARS:
                break
            kept.append(line)
            used += len(line)
        return kept

    def recall(self, goal_shape: str, permitted: set[str], recent: list[Playbook]) -> list[str]:
        """The closest playbooks by shared words — successful plans as examples, and
        demoted ones with why they failed."""
        words = set(re.findall(r"[a-z<>]{3,}", goal_shape))
        scored = []
        for pb in recent:
            if not set(pb.actions) <= permitted | set(SPECIAL_ACTIONS):
                continue
            theirs = set(re.findall(r"[a-z<>]{3,}", pb.shape))
            overlap = len(words & theirs) / max(len(words | theirs), 1)
            if overlap >= 0.3:
                scored.append((overlap, pb))
        out = []
        for _score, pb in sorted(scored, key=lambda s: -s[0])[:RECALLED]:
            steps = json.dumps(pb.steps, ensure_ascii=False)[:900]
            if pb.failing >= DEMOTE_AFTER:
                out.append(
                    f'A similar goal ("{pb.example}") failed with this plan: {steps} '
                    f"— because: {pb.last_failure}"
                )
            else:
                out.append(
                    f'A similar goal ("{pb.example}", parameters in braces) succeeded '
                    f"with this plan: {steps}"
                )
        return out

    # -- after the outcome -----------------------------------------------------------

    async def learn(self, outcome: Outcome, experience: dict[str, Any]) -> None:
        request = experience.get("request") or {}
        if request.get("learn") is False:
            return
        await db_work(self.store.engine, self.learn_now, outcome, experience)

    def learn_now(self, outcome: Outcome, experience: dict[str, Any]) -> None:
        decisions = self._people(outcome)
        used = experience.get("playbook")
        taught = None
        if (
            not used
            and not request_tainted(experience)
            and self._worth_a_playbook(outcome, decisions)
        ):
            steps = [
                r.model_dump(mode="json", include={"id", "action", "args", "depends_on"})
                for r in outcome.steps
            ]
            pb, _why = generalise(outcome.goal, steps, secret=self.redact)
            if pb is not None:
                pb.agent, pb.model = outcome.agent, outcome.model
                taught = (pb, outcome.run_id)
        self.store.record_finished(
            [
                (
                    r.action,
                    getattr(self.registry.get(r.action), "source", "?"),
                    r.status is StepStatus.succeeded,
                    r.duration_ms,
                    self._private(r.error) if r.error else None,
                )
                for r in outcome.steps
                if r.action in self.registry
                and r.status in (StepStatus.succeeded, StepStatus.failed)
            ],
            # routing prefers agents whose runs of a kind succeed
            (
                outcome.agent,
                shape(outcome.goal),
                outcome.status is RunStatus.completed,
                outcome.run_id,
            )
            if outcome.status in RECORDED
            else None,
            taught,
        )
        if used:
            replay = [r for r in outcome.steps if r.plan_version == 1]
            bad = next((r for r in replay if r.status is not StepStatus.succeeded), None)
            failure = (
                None
                if bad is None
                else self.redact(f"{bad.id} {bad.action} {bad.status.value}: {bad.error}")
            )
            self.store.replayed(used, outcome.run_id, failure)

    def _worth_a_playbook(self, outcome: Outcome, decisions: list[str]) -> bool:
        if outcome.status is not RunStatus.completed or decisions or not outcome.steps:
            return False
        for r in outcome.steps:
            if r.tainted or r.plan_version > 1:
                # Planned after reading, or fed by, untrusted content: a replay would be a
                # first plan, trusted, and run without the approval the taint asked for.
                return False
            spec = self.registry.get(r.action)
            if r.status is not StepStatus.succeeded or spec is None:
                return False  # special steps (delegation, questions) are not replayed
            if (spec.verify is not None or spec.verify_async is not None) and not r.verified:
                return False
        return True

    def _people(self, outcome: Outcome) -> list[str]:
        """Lessons from the run's denied and edited approvals and answered questions;
        returns the kinds of decisions that changed the plan."""
        from openlam.governance.approvals import DENIED, EDITED, EXPIRED

        changed = []
        for ap in self.store.approvals_of(outcome.run_id):
            if ap.status not in (DENIED, EDITED, EXPIRED):
                continue
            changed.append(ap.status)
            if ap.status == EXPIRED:
                continue  # nobody decided: nothing was taught
            said = f' ("{ap.comment}")' if ap.comment else ""
            step = next((r for r in outcome.steps if r.id == ap.step_id), None)
            if step is not None and step.tainted:
                # Its arguments came from untrusted content: the person's decision is a
                # lesson, the arguments are not text for a future planner's prompt.
                text = (
                    f"{ap.decided_by} {ap.status} {ap.action} (arguments from untrusted "
                    f'content) for the goal "{outcome.goal}"{said}'
                )
            elif ap.status == DENIED:
                text = (
                    f"{ap.decided_by} denied {ap.action} with {_brief(ap.args)} for the "
                    f'goal "{outcome.goal}"{said}; do not plan it that way again'
                )
            else:
                changes = {k: v for k, v in (ap.edited_args or {}).items() if ap.args.get(k) != v}
                text = (
                    f"{ap.decided_by} changed {ap.action}: {_brief(changes)} instead of "
                    f"{_brief({k: ap.args.get(k) for k in changes})}{said}"
                )
            self.store.add_lesson(
                agent=outcome.agent,
                action=ap.action,
                kind=ap.status,
                text=self._private(text),
                run_id=outcome.run_id,
                step_id=ap.step_id,
            )
        for r in outcome.steps:
            if r.action in ("ask_human", "human.ask"):
                got = self.store.answer_of(outcome.run_id, r.id)
                if got is not None:
                    question = r.args.get("question", "") if isinstance(r.args, dict) else ""
                    self.store.add_lesson(
                        agent=outcome.agent,
                        action="ask_human",
                        kind="answer",
                        text=self._private(
                            f'asked "{question}", {got["by"] or "a person"} '
                            f'answered "{got["answer"]}"'
                        ),
                        run_id=outcome.run_id,
                        step_id=r.id,
                    )
        return changed

    def _private(self, text: str) -> str:
        """Secrets masked; email addresses kept to their domain."""
        return private(str(self.redact(text)))


def request_tainted(experience: dict[str, Any]) -> bool:
    """Whether the run's own goal was untrusted (a trigger's event, a tainted delegation)."""
    return bool((experience.get("request") or {}).get("tainted_by"))


def _unreliable(stats: dict[str, Any]) -> bool:
    return stats["calls"] >= UNRELIABLE_AFTER and stats["success_rate"] < UNRELIABLE_BELOW


def _commonest(stats: dict[str, Any]) -> str:
    common = next(iter(stats["errors"]), "")
    return f"; common error: {common}" if common else ""


def _brief(value: Any, limit: int = 300) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[:limit] + "…"


def _masked(value: str) -> str:
    return _EMAIL.sub(lambda m: m.group()[0] + "…@" + m.group().split("@", 1)[1], value)
