"""Who may use the actions of a configured source (an MCP server, an OpenAPI service).

A source's ``grants`` (in its configuration) name agent ids, ``department:ID`` or ``all``;
``openlam mcp add``/``openapi add`` grant the operator by default (plus ``--grant …``),
``openlam actions grant|revoke`` change them. The catalog adds ``SOURCE.*`` to the
permitted actions of every granted agent (:meth:`openlam.org.loader.Catalog.profile`).

:func:`permission_hint` turns "no such action" into the true reason when an action is
installed but the agent may not use it. This module takes plain values and imports
nothing of the loop or the organisation, so either may call it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

ALL = "all"
DEPARTMENT = "department:"


@dataclass(frozen=True)
class SourceAccess:
    """One configured source as the organisation sees it."""

    name: str  # the prefix of its actions
    kind: str  # mcp | openapi
    grants: tuple[str, ...]
    actions: tuple[tuple[str, str], ...] = ()  # (action name, description), from its cache

    @property
    def pattern(self) -> str:
        return f"{self.name}.*"

    def grants_to(self, agent_id: str, department: str | None = None) -> bool:
        return grants_to(self.grants, agent_id, department)


def grants_to(grants: Iterable[str], agent_id: str, department: str | None = None) -> bool:
    for grant in grants:
        if grant in (ALL, agent_id):
            return True
        if department and grant == f"{DEPARTMENT}{department}":
            return True
    return False


def describe_grants(grants: Sequence[str]) -> str:
    """``operator, department data`` / ``every agent`` / ``no agent``."""
    if ALL in grants:
        return "every agent"
    if not grants:
        return "no agent"
    return ", ".join(
        f"department {g[len(DEPARTMENT) :]}" if g.startswith(DEPARTMENT) else g for g in grants
    )


def source_access(settings: Any) -> tuple[list[SourceAccess], list[str]]:
    """Every configured source with its grants and cached actions, and the problems met
    reading them (a malformed configuration file is reported, never fatal here)."""
    from openlam.actions.kinds import all_kinds
    from openlam.errors import UserError

    found: list[SourceAccess] = []
    problems: list[str] = []
    for kind in all_kinds():
        try:
            loaded = kind.load(settings)
        except UserError as exc:
            problems.append(str(exc))
            continue
        for name, config in loaded.items():
            cache = kind.read_cache(settings, name) or None
            members = kind.members(cache) if cache is not None else []
            found.append(
                SourceAccess(
                    name=name,
                    kind=kind.kind,
                    grants=tuple(config.grants),
                    actions=tuple((f"{name}.{m}", d) for m, d in members),
                )
            )
    return found, problems


def permission_hint(
    settings: Any, action_name: str, agent_id: str, installed: Iterable[str] | None = None
) -> str | None:
    """Why ``agent_id`` cannot use ``action_name`` when the action does exist, with the
    command that fixes it; None when no installed action has that name (a real gap).

    ``installed``: the names in the full action registry (without it, only the actions of
    configured sources are known). For plan validation, called for an action the agent's
    permitted set lacks.
    """
    sources, _ = source_access(settings)
    for source in sources:
        if action_name.startswith(f"{source.name}.") and (
            any(name == action_name for name, _ in source.actions)
            or (installed is not None and action_name in set(installed))
        ):
            return (
                f"{action_name} is installed (source {source.name}) but not permitted "
                f"for agent {agent_id}; grant it with `openlam actions grant "
                f"{source.name} {agent_id}`"
            )
    if installed is not None and action_name in set(installed):
        return (
            f"{action_name} is installed but not permitted for agent {agent_id}; run the "
            "goal with an agent that may use it (`openlam agents list`, `--agent ID`) "
            "or add it to the agent's actions (agents/*.yaml; in Python, "
            "Agent(actions=[…]))"
        )
    return None


def permitted(patterns: Iterable[str], action_name: str) -> bool:
    from openlam.actions.registry import permitted_by

    return permitted_by(patterns, action_name)
