"""Who runs a goal: the agent named, the best agent of a department, or the chief of
staff's choice across the whole organisation (model-assisted when a model is connected,
deterministic scoring otherwise)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, NamedTuple

from openlam.config import Settings
from openlam.errors import UserError
from openlam.loop.perceive import AgentProfile
from openlam.loop.runner import Routing

ROUTINE_AGENT = "operator"
log = logging.getLogger("openlam.org")


class Chosen(NamedTuple):
    """Who takes a goal: the agent's profile and why it was chosen (with the model usage
    and catalog warnings of choosing)."""

    agent: AgentProfile
    routing: Routing


async def select_agent(
    settings: Settings,
    goal: str,
    *,
    agent: str | None = None,
    department: str | None = None,
    model: str | None = None,
    installed: list[str] | None = None,
    learn: bool = True,
) -> Chosen:
    """A run request's ``agent`` and ``routing`` fields.
    ``installed``: the names of the workspace's actions when the caller has its registry
    (with in-process actions); by default the plugins' and configured sources'. With
    ``learn`` (and learning on in the workspace), each agent's record on goals of this
    kind weighs the choice."""
    from openlam.org.loader import load_catalog
    from openlam.org.routing import route, route_with_model

    catalog = load_catalog(settings.workspace)
    for problem in catalog.load_errors:  # shown by `openlam run`; never silently dropped
        log.warning(problem)
    warnings = {"warnings": list(catalog.load_errors)} if catalog.load_errors else {}
    installed = installed if installed is not None else _installed(settings)
    if agent:
        if agent not in catalog:
            from difflib import get_close_matches

            close = get_close_matches(agent, [a.id for a in catalog], n=3)
            raise UserError(
                f"no agent {agent!r} in the catalog",
                f"did you mean {', '.join(close)}?"
                if close
                else "list agents with `openlam agents list`",
            )
        return _chosen(catalog, agent, f"{agent} was named by the user", "named", warnings)
    if department is None and ROUTINE_AGENT in catalog and _routine(goal):
        return _chosen(
            catalog,
            ROUTINE_AGENT,
            "a routine task with a known plan shape; the operator takes it without a specialist",
            "routine",
            warnings,
        )
    records = agent_records(settings, goal) if learn else None
    if model and model != "offline":
        usage = {"model_requests": 0, "input_tokens": 0, "output_tokens": 0}
        chosen = await route_with_model(
            goal,
            catalog,
            _asker(settings, model, usage),
            department=department,
            timeout=settings.model_timeout,
            installed=installed,
            records=records,
        )
        return _chosen(
            catalog, chosen.agent.id, chosen.reason, chosen.method, {**usage, **warnings}
        )
    try:
        chosen = route(goal, catalog, department=department, installed=installed, records=records)
    except (KeyError, ValueError) as exc:
        raise UserError(str(exc), "list departments with `openlam departments`") from None
    return _chosen(catalog, chosen.agent.id, chosen.reason, chosen.method, warnings)


def agent_records(settings: Settings, goal: str) -> dict[str, tuple[int, int]] | None:
    """Each agent's (successes, failures) on goals of this one's kind, learned from their
    runs (None when learning is off in the workspace)."""
    import sqlalchemy as sa

    from openlam import learning
    from openlam.learning.literals import shape
    from openlam.learning.store import LearningStore
    from openlam.memory.tables import learn_agent_record

    if not learning.enabled(settings):
        return None
    url = sa.make_url(settings.app_database_url)
    if url.drivername.startswith("sqlite") and not (url.database and Path(url.database).exists()):
        return None  # no database yet, so no history; routing creates none
    store = LearningStore(settings.app_database_url)
    if not sa.inspect(store.engine).has_table(learn_agent_record.name):
        return None  # made by the first run of this version (migration 0004)
    return store.agent_records(shape(goal))


def _installed(settings: Settings) -> list[str]:
    """The names of the workspace's actions (plugins and configured sources)."""
    from openlam.actions.registry import load_plugins

    return [s.name for s in load_plugins(settings=settings)]


def _chosen(
    catalog: Any, agent_id: str, reason: str, method: str, extra: dict[str, Any] | None = None
) -> Chosen:
    return Chosen(
        catalog.profile(agent_id),
        Routing(agent=agent_id, reason=reason, method=method, **(extra or {})),
    )


def _routine(goal: str) -> bool:
    from openlam.models.offline import TEMPLATES

    return any(t.pattern.match(goal.strip()) for t in TEMPLATES)


def _asker(settings: Settings, model_spec: str, usage: dict[str, int]):
    async def ask(prompt: str) -> str:
        from openlam import models
        from openlam.models.resolve import build_model

        reply = await models.request(
            build_model(model_spec, settings), [{"role": "user", "content": prompt}]
        )
        usage["model_requests"] += 1
        usage["input_tokens"] += reply.input_tokens
        usage["output_tokens"] += reply.output_tokens
        return reply.text

    return ask
