"""Load the organisation: the shipped catalog plus the workspace's ``agents/*.yaml``.

Layers, in order: the catalog shipped in the package (one YAML file per department),
then the workspace's ``agents/*.yaml`` and ``agents/*.yml`` (sorted by name). A
workspace entry whose id already exists overrides it field by field; ``remove: true``
drops an agent. Every problem is reported with the file, the line, the agent or
department and the field. A workspace file with a problem is left out — the workspace
goes on with the rest — and the problem is kept in :attr:`Catalog.load_errors`, which
the commands print; a problem in the shipped catalog (or in a workspace that replaces
it, ``builtin=False``) is one :class:`~openlam.errors.UserError` listing them all.

The workspace's configured sources (MCP servers, OpenAPI services) grant their actions
to agents: :meth:`Catalog.profile` adds ``SOURCE.*`` to every granted agent's actions.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from openlam import yamlfile
from openlam.actions.grants import SourceAccess
from openlam.errors import UserError
from openlam.loop.perceive import AgentProfile
from openlam.org.model import Agent, Department
from openlam.validation import explain, suggest
from openlam.yamlfile import LineDict

WORKSPACE_DIR = "agents"
ROUTER_ID = "chief_of_staff"
DOCS_HINT = "see docs/agents.md for the catalog format"
_FILE_KEYS = {"department", "agents"}
_MAX_LISTED = 25


# -- raw entries --------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass
class _Entry:
    """One agent or department as written, possibly merged over an earlier layer."""

    kind: str  # "agent" | "department"
    id: str
    data: dict[str, Any]
    source: Source
    layer: int
    origin: dict[str, Source] = field(default_factory=dict)  # field → where it was set

    def where(self, field_name: str | None) -> Source:
        return self.origin.get(field_name or "", self.source)


@dataclass
class _Parsed:
    department: _Entry | None
    agents: list[_Entry]


class _Problems:
    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, where: Source | str, what: str) -> None:
        self.items.append(f"{where}: {what}")

    def extend(self, other: _Problems) -> None:
        self.items += other.items

    def raise_if_any(self) -> None:
        if not self.items:
            return
        shown = self.items[:_MAX_LISTED]
        more = len(self.items) - len(shown)
        head = (
            "the agent catalog has a problem"
            if len(self.items) == 1
            else f"the agent catalog has {len(self.items)} problems"
        )
        body = "\n  ".join(shown) + (f"\n  … and {more} more" if more > 0 else "")
        raise UserError(f"{head}:\n  {body}", f"fix the file and field named above; {DOCS_HINT}")


def _parse_file(display: str, text: str, layer: int, problems: _Problems) -> _Parsed:
    try:
        loaded = yamlfile.load(text)
    except yamlfile.YamlSyntaxError as exc:
        problems.add(Source(display, exc.line), f"could not parse YAML: {exc.problem}")
        return _Parsed(None, [])
    for line, message in loaded.duplicates:
        problems.add(Source(display, line), message)
    doc = loaded.data
    if doc is None:
        return _Parsed(None, [])
    if not isinstance(doc, LineDict):
        problems.add(
            Source(display, 1),
            f"expected a mapping with 'department' and/or 'agents', found {type(doc).__name__}",
        )
        return _Parsed(None, [])
    for key in doc:
        if key not in _FILE_KEYS:
            problems.add(
                Source(display, doc.line_of(key)),
                f"unknown top-level key {key!r} (expected 'department' and 'agents')",
            )
    department = None
    file_department: str | None = None
    raw_dept = doc.get("department")
    if raw_dept is not None:
        department = _entry("department", display, raw_dept, layer, problems)
        if department is not None:
            file_department = department.id
    agents: list[_Entry] = []
    raw_agents = doc.get("agents")
    if raw_agents is None:
        raw_agents = []
    if not isinstance(raw_agents, list):
        problems.add(
            Source(display, doc.line_of("agents")),
            "'agents' must be a list of agents (each item starting with '- id:')",
        )
        raw_agents = []
    for raw in raw_agents:
        agent = _entry("agent", display, raw, layer, problems)
        if agent is None:
            continue
        given = agent.data.get("department")
        if file_department is not None:
            if given is None:
                agent.data["department"] = file_department
                agent.origin["department"] = department.source if department else agent.source
            elif given != file_department:
                problems.add(
                    agent.where("department"),
                    f"agent {agent.id!r}, field 'department': {given!r} differs from "
                    f"this file's department {file_department!r}; move the agent to "
                    "a file of its own department or drop the field",
                )
        agents.append(agent)
    return _Parsed(department, agents)


def _entry(kind: str, display: str, raw: Any, layer: int, problems: _Problems) -> _Entry | None:
    if not isinstance(raw, LineDict):
        line = getattr(raw, "line", 0)
        problems.add(
            Source(display, line),
            f"each {kind} must be a mapping of fields, "
            f"found {type(raw).__name__}: {str(raw)[:60]!r}",
        )
        return None
    source = Source(display, raw.line)
    ident = raw.get("id")
    if not isinstance(ident, str) or not ident:
        problems.add(source, f"{kind} without an 'id' (every {kind} needs a unique id)")
        return None
    origin = {str(k): Source(display, raw.line_of(k)) for k in raw}
    return _Entry(kind, ident, dict(raw), source, layer, origin)


# -- layers -------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _builtin_texts() -> tuple[tuple[str, str], ...]:
    root = resources.files("openlam.org") / "catalog"
    files = sorted(
        (p for p in root.iterdir() if p.name.endswith((".yaml", ".yml"))), key=lambda p: p.name
    )
    return tuple((f"openlam/org/catalog/{p.name}", p.read_text(encoding="utf-8")) for p in files)


def _workspace_texts(workspace: Path, problems: _Problems) -> list[tuple[str, str]]:
    folder = workspace / WORKSPACE_DIR
    if not folder.is_dir():
        return []
    out = []
    for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
        display = f"{WORKSPACE_DIR}/{path.name}"
        try:
            out.append((display, path.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError) as exc:
            problems.add(Source(display, 0), f"could not read the file: {exc}")
    return out


def _merge(table: dict[str, _Entry], entry: _Entry, problems: _Problems) -> None:
    old = table.get(entry.id)
    if old is None:
        table[entry.id] = entry
    elif old.layer == entry.layer:
        problems.add(
            entry.source,
            f"duplicate {entry.kind} id {entry.id!r}: already defined "
            f"at {old.source}; ids must be unique (to change it, edit one place)",
        )
    else:  # a later layer overrides field by field
        table[entry.id] = _Entry(
            entry.kind,
            entry.id,
            {**old.data, **entry.data},
            entry.source,
            entry.layer,
            {**old.origin, **entry.origin},
        )


def _validate(entry: _Entry, model: type[BaseModel], problems: _Problems) -> Any:
    try:
        return model.model_validate(entry.data)
    except ValidationError as exc:
        for err in exc.errors():
            loc = [str(p) for p in err["loc"]]
            name = loc[0] if loc else None
            path = ".".join(loc) or "(entry)"
            message = explain(model, err)
            problems.add(entry.where(name), f"{entry.kind} {entry.id!r}, field {path!r}: {message}")
        return None


@dataclass
class _File:
    layer: int
    name: str
    parsed: _Parsed
    problems: _Problems


def load_catalog(workspace: str | Path | None = None, *, builtin: bool = True) -> Catalog:
    """The shipped catalog overlaid with ``<workspace>/agents/*.yaml``.

    ``workspace=None`` loads the shipped catalog only; ``builtin=False`` loads the
    workspace's files alone (a fully custom organisation). A workspace file that cannot
    be used (it does not parse, an entry is invalid, it breaks the org chart) is left
    out and named in ``load_errors``; the rest of the workspace loads.
    """
    unreadable = _Problems()
    texts: list[tuple[int, str, str]] = []
    if builtin:
        texts += [(0, name, text) for name, text in _builtin_texts()]
    if workspace is not None:
        texts += [(1, name, text) for name, text in _workspace_texts(Path(workspace), unreadable)]
    files = []
    for layer, name, text in texts:
        problems = _Problems()
        files.append(_File(layer, name, _parse_file(name, text, layer, problems), problems))
    load_errors = [f"{p.split(': ', 1)[0]} was skipped: {p}" for p in unreadable.items]
    if not builtin or workspace is None:
        catalog, problems = _assemble(files)
        problems.raise_if_any()
        assert catalog is not None
    else:
        catalog, skipped = _assemble_skipping(files)
        load_errors += skipped
    if workspace is not None:
        catalog.access, problems_reading = _source_access(Path(workspace))
        load_errors += problems_reading
    catalog.load_errors = load_errors
    return catalog


def _assemble_skipping(files: list[_File]) -> tuple[Catalog, list[str]]:
    """The catalog from every usable file: the shipped ones must be; each workspace file
    that brings a problem is left out (tried one at a time, in order, only when the whole
    set has a problem)."""
    shipped = [f for f in files if f.layer == 0]
    catalog, problems = _assemble(files)
    if not problems.items:
        assert catalog is not None
        return catalog, []
    _, shipped_problems = _assemble(shipped)
    shipped_problems.raise_if_any()
    accepted, skipped = list(shipped), []
    for candidate in (f for f in files if f.layer > 0):
        _, problems = _assemble([*accepted, candidate])
        if problems.items:
            shown = "; ".join(problems.items[:3]) + (" …" if len(problems.items) > 3 else "")
            skipped.append(
                f"{candidate.name} was skipped (the workspace runs without it "
                f"until it is fixed; {DOCS_HINT}): {shown}"
            )
        else:
            accepted.append(candidate)
    catalog, problems = _assemble(accepted)
    problems.raise_if_any()
    assert catalog is not None
    return catalog, skipped


def _assemble(files: list[_File]) -> tuple[Catalog | None, _Problems]:
    """Merge parsed files in order and validate the result; None with the problems if
    it is not a valid organisation."""
    problems = _Problems()
    for file in files:
        problems.extend(file.problems)
    departments: dict[str, _Entry] = {}
    agents: dict[str, _Entry] = {}
    removed: set[str] = set()
    for file in files:
        if file.parsed.department is not None:
            _merge(departments, file.parsed.department, problems)
        for agent in file.parsed.agents:
            if agent.data.get("remove") is True:
                agents.pop(agent.id, None)
                removed.add(agent.id)
                continue
            data = {k: v for k, v in agent.data.items() if k != "remove"}
            origin = {k: v for k, v in agent.origin.items() if k != "remove"}
            removed.discard(agent.id)
            _merge(agents, dataclasses.replace(agent, data=data, origin=origin), problems)
    if problems.items:
        return None, problems

    valid_depts: dict[str, Department] = {}
    for entry in departments.values():
        dept = _validate(entry, Department, problems)
        if dept is not None:
            valid_depts[dept.id] = dept
    valid_agents: dict[str, Agent] = {}
    for entry in agents.values():
        agent = _validate(entry, Agent, problems)
        if agent is not None:
            valid_agents[agent.id] = agent
    # Reference checks run even when some entries failed, so one pass shows every problem.
    _check_structure(valid_agents, set(departments), agents, removed, problems)
    if problems.items:
        return None, problems
    return Catalog(valid_depts, valid_agents, {k: e.source for k, e in agents.items()}), problems


def _source_access(workspace: Path) -> tuple[list[SourceAccess], list[str]]:
    """The workspace's configured sources and whom they grant their actions to."""
    from openlam.actions.grants import source_access
    from openlam.config import load_settings

    return source_access(load_settings(workspace))


def _check_structure(
    agents: dict[str, Agent],
    departments: set[str],
    entries: dict[str, _Entry],
    removed: set[str],
    problems: _Problems,
) -> None:
    """``agents`` are the valid ones; ``entries`` and ``departments`` every id written."""
    for agent in agents.values():
        entry = entries[agent.id]
        if agent.department not in departments:
            problems.add(
                entry.where("department"),
                f"agent {agent.id!r}, field 'department': no department "
                f"{agent.department!r}{suggest(agent.department, departments)}",
            )
        if agent.manager is not None and agent.manager not in entries:
            why = (
                " (it was removed with 'remove: true'; give its reports a new manager)"
                if agent.manager in removed
                else suggest(agent.manager, agents)
            )
            problems.add(
                entry.where("manager"),
                f"agent {agent.id!r}, field 'manager': unknown manager {agent.manager!r}{why}",
            )
    if problems.items:
        return

    for cycle in _cycles(agents):
        entry = entries[cycle[0]]
        path = " → ".join([*cycle, cycle[0]])
        problems.add(
            entry.where("manager"),
            f"agent {cycle[0]!r}, field 'manager': "
            f"management cycle {path}; the org chart must be a tree",
        )
    if problems.items:
        return

    roots = [a for a in agents.values() if a.manager is None]
    if not roots:
        problems.add("catalog", "no chief executive: exactly one agent must have 'manager: null'")
        return
    chief = next((a for a in roots if a.id == "ceo"), roots[0])
    for other in roots:
        if other is not chief:
            problems.add(
                entries[other.id].where("manager"),
                f"agent {other.id!r}, field 'manager': has no manager, so it and its "
                f"reports are unreachable from the chief executive {chief.id!r}; "
                "set a manager",
            )


def _cycles(agents: dict[str, Agent]) -> list[list[str]]:
    """Every management cycle once, each starting at its smallest id."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    found: list[list[str]] = []
    for start in agents:
        path: list[str] = []
        node: str | None = start
        while node is not None and node in agents and state.get(node) is None:
            state[node] = 1
            path.append(node)
            node = agents[node].manager
        if node is not None and state.get(node) == 1:
            cycle = path[path.index(node) :]
            i = cycle.index(min(cycle))
            found.append(cycle[i:] + cycle[:i])
        for visited in path:
            state[visited] = 2
    return found


# -- the loaded organisation ------------------------------------------------------------------


class Catalog:
    """A validated organisation: one tree of agents rooted at the chief executive."""

    def __init__(
        self,
        departments: dict[str, Department],
        agents: dict[str, Agent],
        sources: dict[str, Source] | None = None,
        access: list[SourceAccess] | None = None,
    ) -> None:
        self.departments = departments
        self.agents = agents
        self.sources = sources or {}
        self.access: list[SourceAccess] = access or []
        """The workspace's configured sources of actions, with their grants."""
        self.load_errors: list[str] = []
        """Workspace files left out, and sources that could not be read (for warnings)."""
        self._reports: dict[str, list[Agent]] = {a: [] for a in agents}
        for agent in agents.values():
            if agent.manager is not None and agent.manager in self._reports:
                self._reports[agent.manager].append(agent)
        roots = [a for a in agents.values() if a.manager is None]
        if len(roots) != 1:
            raise UserError(
                f"the catalog needs exactly one chief executive, found {len(roots)}", DOCS_HINT
            )
        self.root = roots[0]

    def __len__(self) -> int:
        return len(self.agents)

    def __iter__(self) -> Iterator[Agent]:
        return iter(self.agents.values())

    def __contains__(self, agent_id: object) -> bool:
        return agent_id in self.agents

    @property
    def router(self) -> Agent:
        """The agent that receives goals without an owner: the chief of staff."""
        return self.agents.get(ROUTER_ID, self.root)

    def agent(self, agent_id: str) -> Agent:
        found = self.agents.get(agent_id)
        if found is None:
            raise UserError(
                f"no agent {agent_id!r}{suggest(agent_id, self.agents)}",
                "list the agents with `openlam agents list`",
            )
        return found

    def department(self, key: str) -> Department:
        """A department by id or by name, case-insensitively ("Sales", "people")."""
        wanted = key.strip().lower()
        for dept in self.departments.values():
            if wanted in (dept.id, dept.name.lower()):
                return dept
        names = [d.id for d in self.departments.values()]
        raise UserError(
            f"no department {key!r}{suggest(wanted, names)}", f"departments: {', '.join(names)}"
        )

    def members(self, department_id: str) -> list[Agent]:
        return [a for a in self.agents.values() if a.department == department_id]

    def head(self, department_id: str) -> Agent | None:
        """The most senior member of a department (its manager is outside it)."""
        members = self.members(department_id)
        return min(members, key=lambda a: len(self.chain(a.id)), default=None)

    def reports(self, agent_id: str) -> list[Agent]:
        return list(self._reports.get(agent_id, []))

    def chain(self, agent_id: str) -> list[Agent]:
        """The agent, its manager, … up to the chief executive."""
        out = [self.agent(agent_id)]
        while out[-1].manager is not None:
            out.append(self.agents[out[-1].manager])
        return out

    def source(self, agent_id: str) -> str:
        src = self.sources.get(agent_id)
        return str(src) if src else "(built in code)"

    def unmatched_patterns(self, action_names: Iterable[str]) -> dict[str, list[str]]:
        """Agent id → permitted-action patterns that match none of ``action_names``."""
        import fnmatch

        names = list(action_names)
        out: dict[str, list[str]] = {}
        for agent in self.agents.values():
            bad = [
                p
                for p in self.permitted_patterns(agent.id)
                if not any(fnmatch.fnmatchcase(n, p) for n in names)
            ]
            if bad:
                out[agent.id] = bad
        return out

    def granted(self, agent_id: str) -> list[SourceAccess]:
        """The configured sources whose actions ``agent_id`` may use by their grants."""
        agent = self.agent(agent_id)
        return [s for s in self.access if s.grants_to(agent.id, agent.department)]

    def permitted_patterns(self, agent_id: str) -> tuple[str, ...]:
        """The agent's own action patterns plus ``SOURCE.*`` of every source granted to it."""
        own = self.agent(agent_id).actions
        return (*own, *(s.pattern for s in self.granted(agent_id) if s.pattern not in own))

    def profile(self, agent_id: str) -> AgentProfile:
        """The core loop's view of an agent (:class:`openlam.loop.perceive.AgentProfile`):
        its instructions followed by its place in the organisation, so a plan can name
        whom to delegate to."""
        agent = self.agent(agent_id)
        dept = self.departments[agent.department]
        lines = [agent.instructions]
        if agent.manager is not None:
            boss = self.agents[agent.manager]
            lines.append(f"You report to {boss.name}, {boss.title} (agent id {boss.id}).")
        reports = self.reports(agent.id)
        if reports:
            listed = "; ".join(f"{r.id} ({r.title})" for r in reports)
            lines.append(f"Your direct reports, who can take delegated sub-goals: {listed}.")
        extra: dict[str, Any] = {}
        known = AgentProfile.model_fields
        for name in ("department", "manager", "model"):  # if the profile carries them
            if name in known:
                extra[name] = getattr(agent, name)
        if agent.budget is not None:
            extra["max_steps"] = agent.budget.max_steps
            extra["max_model_requests"] = agent.budget.max_model_requests
        return AgentProfile(
            id=agent.id,
            name=agent.name,
            title=f"{agent.title} ({dept.name})",
            instructions=" ".join(lines),
            actions=self.permitted_patterns(agent.id),
            **extra,
        )
