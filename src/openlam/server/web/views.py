"""What each dashboard page shows, read through the same functions the CLI uses (the
project database's store, the governance API, the org catalog, the action registry).
Plain data for the templates: no HTML here, no HTTP."""

from __future__ import annotations

import dataclasses
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from openlam.config import Settings
from openlam.errors import UserError
from openlam.memory.store import Store

STATES = (
    "queued",
    "running",
    "interrupted",
    "completed",
    "partial",
    "blocked",
    "failed",
    "cancelled",
)


def overview(settings: Settings, store: Store) -> dict[str, Any]:
    """Runs by state, the newest runs, waiting approvals, the top gaps, usage today and
    overall."""
    from openlam.governance.api import list_approvals, list_gaps
    from openlam.governance.budget import BudgetConfig, Budgets

    counts = store.count_by_status()
    budgets = Budgets(settings.app_database_url, BudgetConfig.from_settings(settings))
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    return {
        "counts": [(s, counts.get(s, 0)) for s in STATES]
        + [(s, n) for s, n in sorted(counts.items()) if s not in STATES],
        "total": sum(counts.values()),
        "recent": store.list_runs(limit=10),
        "approvals": list_approvals(settings, status="pending"),
        "gaps": list_gaps(settings, 5),
        "usage_today": budgets.totals(day=today),
        "usage_all": budgets.totals(),
    }


def runs(
    store: Store, status: str | None, offset: int = 0, limit: int = 50, top_level: bool = False
) -> dict[str, Any]:
    """One page of runs, newest first, with where the next and previous pages start."""
    if status and status not in STATES:
        raise UserError(f"unknown run status {status!r}", f"use one of {', '.join(STATES)}")
    offset = max(offset, 0)
    rows = store.list_runs(
        limit=limit + 1, status=status or None, offset=offset, top_level=top_level
    )
    return {
        "rows": rows[:limit],
        "offset": offset,
        "older": offset + limit if len(rows) > limit else None,
        "newer": max(offset - limit, 0) if offset else None,
    }


def run(settings: Settings, store: Store, run_id: str) -> dict[str, Any]:
    """One run: its stored row, steps, outcome, delegation tree and waiting approvals."""
    from openlam.governance.api import list_approvals
    from openlam.loop.state import Outcome

    stored = store.get_run(run_id)
    if stored is None:
        raise LookupError(f"no run {run_id!r} in this workspace")
    outcome = Outcome.model_validate(stored["outcome"]) if stored["outcome"] else None
    return {
        "run": stored,
        "outcome": outcome,
        "plan": plan_of(stored),
        "tree": tree(store, stored),
        "approvals": list_approvals(settings, status="pending", run_id=stored["id"]),
        "questions": questions(stored),
        "finished": stored["status"] not in ("queued", "running", "interrupted"),
    }


def questions(stored: dict[str, Any]) -> list[dict[str, str]]:
    """The questions the run asked a person (``ask_human``, ``human.ask``) and waits on."""
    return [
        {"step": s["step_id"], "question": str((s["args"] or {}).get("question", ""))}
        for s in stored["steps"]
        if s["action"] in ("ask_human", "human.ask") and s["status"] == "pending"
    ]


def plan_of(stored: dict[str, Any]) -> list[dict[str, Any]]:
    """The run's latest plan as stored with its steps (args, depends_on)."""
    request_plan = [s for s in stored["steps"]]
    if not request_plan:
        return []
    latest = max(s["plan_version"] for s in request_plan)
    return [s for s in request_plan if s["plan_version"] == latest]


def tree(store: Store, stored: dict[str, Any], depth: int = 0) -> dict[str, Any]:
    """The delegation tree under a run (children loaded from the store), depth-limited so
    a corrupt parent link cannot loop."""
    node = {
        "id": stored["id"],
        "agent": stored["agent"],
        "status": stored["status"],
        "goal": stored["goal"],
        "children": [],
    }
    if depth < 8:
        for child in stored.get("children", []):
            full = store.get_run(child["id"])
            if full is not None:
                node["children"].append(tree(store, full, depth + 1))
    return node


def deliverable_path(settings: Settings, store: Store, run_id: str, name: str) -> Path:
    """The file of one of a run's deliverables, only if the run reported it and it lies in
    the workspace; LookupError otherwise (the dashboard serves no other file)."""
    stored = store.get_run(run_id)
    if stored is None or not stored["outcome"]:
        raise LookupError(f"run {run_id!r} has no finished outcome")
    if name not in (stored["outcome"].get("deliverables") or []):
        raise LookupError(f"{name!r} is not a deliverable of run {stored['id']}")
    root = Path(settings.workspace).resolve()
    path = (root / name).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        raise LookupError(f"{name} is no longer in the workspace")
    return path


def approvals(settings: Settings, show_all: bool) -> list[Any]:
    from openlam.governance.api import list_approvals

    rows = list_approvals(settings, status=None if show_all else "pending")
    return sorted(rows, key=lambda a: a.requested_at, reverse=show_all)


def org(settings: Settings) -> dict[str, Any]:
    """Departments (chief executive's first) → agents, each with its permitted action
    patterns, the installed actions they match, and its budgets (the agent's own and the
    workspace's per-agent limits)."""
    from openlam.actions.registry import load_plugins
    from openlam.governance.budget import BudgetConfig
    from openlam.org.loader import load_catalog
    from openlam.org.views import ordered_departments, permitted_actions

    catalog = load_catalog(settings.workspace)
    names = [s.name for s in load_plugins(settings=settings)]
    limits = BudgetConfig.from_settings(settings)
    departments = []
    for dept_id in ordered_departments(catalog):
        members = []
        for agent in catalog.members(dept_id):
            per_day = limits.agent.get(agent.id) or limits.agent.get("*")
            members.append(
                {
                    "agent": agent,
                    "permissions": permitted_actions(catalog, agent.id, names),
                    "run_budget": {
                        k: v
                        for k, v in (agent.budget.model_dump() if agent.budget else {}).items()
                        if v is not None
                    },
                    "day_budget": {
                        k: v for k, v in dataclasses.asdict(per_day).items() if v is not None
                    }
                    if per_day
                    else {},
                }
            )
        departments.append(
            {
                "dept": catalog.departments[dept_id],
                "head": catalog.head(dept_id),
                "members": members,
            }
        )
    return {
        "departments": departments,
        "agents": len(catalog),
        "problems": list(catalog.load_errors),
    }


def actions(settings: Settings) -> dict[str, Any]:
    """Every installed action by source, and the configured MCP/OpenAPI sources with who
    may use them and whether they are trusted."""
    from openlam.actions.grants import describe_grants
    from openlam.actions.kinds import configured
    from openlam.actions.registry import action_summary, load_plugins

    registry = load_plugins(settings=settings)
    specs = sorted(registry, key=lambda s: (s.source, s.name))
    sources = [
        {
            "name": name,
            "kind": kind.kind,
            "what": config.describe(),
            "trusted": config.trusted,
            "grants": describe_grants(config.grants),
        }
        for name, (kind, config) in sorted(configured(settings).items())
    ]
    return {
        "actions": [
            {**action_summary(s), "description": first_sentence(s.description)} for s in specs
        ],
        "sources": sources,
        "problems": list(registry.load_errors),
    }


def first_sentence(text: str) -> str:
    line = (text or "").strip().split("\n", 1)[0]
    return line.split(". ", 1)[0].rstrip(".")


def audit(settings: Settings, run_id: str | None = None, limit: int = 100) -> dict[str, Any]:
    """The newest audit records (of one run, if given) and the log's head."""
    from openlam.governance.api import audit_head, audit_log

    log = audit_log(settings)
    seq, _ = log.head()
    return {
        "records": log.records(run_id=run_id or None, newest=limit)[::-1],
        "count": seq,
        "head": audit_head(settings),
        "run": run_id or "",
    }


def gaps(settings: Settings, limit: int = 100) -> list[Any]:
    from openlam.governance.api import list_gaps

    return list_gaps(settings, limit)


def ago(ts: float | None, now: float | None = None) -> str:
    """A timestamp as a short relative time ("3 min ago")."""
    if not ts:
        return "-"
    delta = (now or time.time()) - ts
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if abs(delta) >= size:
            n = int(abs(delta) // size)
            return f"{n} {unit} ago" if delta > 0 else f"in {n} {unit}"
    return "just now" if delta >= 0 else "in a moment"


def learning(settings: Settings) -> dict[str, Any]:
    """What the workforce has learned: playbooks (replayed without a model), lessons
    from people's decisions and answers, each action's reliability."""
    from openlam.learning.store import DEMOTE_AFTER, LearningStore

    store = LearningStore(settings.app_database_url)
    return {
        "playbooks": store.playbooks(),
        "demote_after": DEMOTE_AFTER,
        "lessons": store.lessons(limit=100),
        "tools": store.tool_stats(),
    }
