"""One registry over every source of actions.

Built-ins and third-party plugins arrive the same way: a module named by an entry
point in the group ``openlam.plugins``. The module either defines ``@action``
functions at top level or a ``register(registry)`` function for dynamic sources;
``register(registry, settings)`` also receives the workspace's settings (None when the
caller gave none: the plugin then loads them itself). A module's ``CONFIG`` (a
:class:`~openlam.actions.plugin_config.PluginConfig`) is checked against the settings
when it loads.
"""

from __future__ import annotations

import fnmatch
import importlib
import inspect
import logging
from collections.abc import Iterable, Iterator
from importlib.metadata import entry_points
from types import ModuleType
from typing import TYPE_CHECKING, Any

from openlam.actions import plugin_config
from openlam.actions.spec import ActionSpec
from openlam.errors import UserError

if TYPE_CHECKING:
    from openlam.config import Settings

PLUGIN_GROUP = "openlam.plugins"
BUILTIN_PACKAGE = "openlam.actions.builtin."  # shipped and tested: schemas built on first use
log = logging.getLogger(__name__)


class ActionRegistry:
    """Every action a workspace offers, by name: built-ins, plugins, MCP tools, OpenAPI
    operations and in-process Python functions (:meth:`add_actions`).

    Who makes it: :func:`load_plugins` (the installed plugins; MCP and OpenAPI sources
    register through the plugins that read the workspace's configuration), called once
    per process by the runtime (``Runtime.registry``) and by commands that only list
    actions; tests build one from specs directly. Lifecycle: filled at start, then
    grown by in-process actions (``Workforce.add_actions``); each run perceives
    :meth:`subset` for its agent, and plugin modules' ``close_run``/``close_all`` hooks
    (``modules``) are called at a run's end and at shutdown.

    Names are unique: a plugin whose action name is taken is added under its source's
    prefix (``source.name``). Iteration is in name order. :meth:`subset` gives an agent's
    view (glob patterns; ``!pattern`` excludes); ``load_errors`` holds what could not be
    loaded, for the CLI to warn about.

        registry = ActionRegistry([spec_from_function(lookup_order, "orders.lookup")])
        registry.subset(["orders.*", "!orders.delete"])  # what an agent may use
    """

    def __init__(self, specs: Iterable[ActionSpec] = ()) -> None:
        self._specs: dict[str, ActionSpec] = {}
        # an agent's patterns → the specs they permit, while no action is added: every
        # run asks for its agent's view, and matching 40+ names to globs each time cost
        # ≈ 0.25 ms a run (bench/README.md, "Cost per run")
        self._matched: dict[tuple[str, ...], list[ActionSpec]] = {}
        self.load_errors: list[str] = []
        self.modules: list[ModuleType] = []  # for lifecycle hooks: close_run, close_all
        self.titles: dict[str, str] = {}
        """Prefix of a configured source's actions → what the source calls itself (an
        OpenAPI spec's title, an MCP server's name): a goal naming it names the source."""
        for spec in specs:
            self.add(spec)

    def add(self, spec: ActionSpec, *, replace: bool = False) -> ActionSpec:
        existing = self._specs.get(spec.name)
        if existing is not None and not replace and existing is not spec:
            # A collision keeps the first; the newcomer is reachable under its source prefix.
            prefixed = f"{spec.source}.{spec.name}"
            if prefixed in self._specs:
                raise UserError(
                    f"action {spec.name} from {spec.source} collides with {existing.source}",
                    "rename the plugin's action or remove one of the plugins",
                )
            log.warning(
                "action %s from %s renamed %s (name taken by %s)",
                spec.name,
                spec.source,
                prefixed,
                existing.source,
            )
            spec.name = prefixed
        self._specs[spec.name] = spec
        self._matched.clear()
        return spec

    def add_module(
        self, module: ModuleType, source: str | None = None, settings: Settings | None = None
    ) -> None:
        """Add a plugin module's actions. A module may also define ``async close_run(run_id)``
        (called when a run ends) and ``async close_all()`` (called at shutdown)."""
        if module in self.modules:  # added before (a Workforce and its Agent both name it)
            return
        self.modules.append(module)
        problem = plugin_config.check(module, settings)
        if problem:  # its actions stay: they fail with the same words if they run
            self.load_errors.append(f"plugin {source or module.__name__}: {problem}")
            log.warning(self.load_errors[-1])
        register = getattr(module, "register", None)
        if callable(register):
            if _takes_settings(register):
                register(self, settings)
            else:
                register(self)
            return
        shipped = module.__name__.startswith(BUILTIN_PACKAGE)
        for value in vars(module).values():
            spec = getattr(value, "__openlam_action__", None)
            if isinstance(spec, ActionSpec):
                if not shipped:  # a plugin's bad type hints are reported when it loads
                    spec.build_schemas()
                if source:
                    spec.source = source
                self.add(spec)

    def add_actions(self, items: Iterable[Any], *, source: str = "python") -> list[str]:
        """Add in-process actions; returns their names. Each item is a function decorated
        with ``@action``, a plain function (it becomes ``local.FUNCTION_NAME``, risk
        ``write``: nothing says it only reads), a module of ``@action`` functions (or with a
        ``register(registry)``), or an :class:`ActionSpec`. Adding the same item again is
        harmless."""
        from openlam.actions.spec import Risk, spec_from_function

        names: list[str] = []
        for item in items:
            if isinstance(item, ModuleType):
                before = set(self._specs)
                self.add_module(item, source=f"{source}:{item.__name__}")
                names += sorted(set(self._specs) - before) or [
                    s.name for s in self if s.source == f"{source}:{item.__name__}"
                ]
                continue
            spec = (
                item if isinstance(item, ActionSpec) else getattr(item, "__openlam_action__", None)
            )
            if spec is None and callable(item):
                if not str(getattr(item, "__name__", "")).isidentifier():  # a lambda, a partial
                    raise UserError(
                        f"{item!r} has no name to be called by",
                        "define it with def (its name names the action, local.NAME), or "
                        "decorate it with @action('NAME', …)",
                    )
                name = f"local.{item.__name__}"
                known = self._specs.get(name)
                if known is not None and known.func is item:
                    names.append(name)
                    continue
                spec = spec_from_function(item, name, risk=Risk.write, source=source)
            if isinstance(spec, ActionSpec):
                spec.build_schemas()  # bad type hints are an error now, not at first use
            else:
                raise UserError(
                    f"{item!r} is not an action",
                    "give a function (plain or decorated with @action), a module "
                    "of @action functions, or an ActionSpec",
                )
            if self._specs.get(spec.name) is not spec:
                if spec.source == "builtin":
                    spec.source = source
                self.add(spec)
            names.append(spec.name)
        return names

    def get(self, name: str) -> ActionSpec | None:
        return self._specs.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def __iter__(self) -> Iterator[ActionSpec]:
        return iter(sorted(self._specs.values(), key=lambda s: s.name))

    def __len__(self) -> int:
        return len(self._specs)

    def matching(self, patterns: Iterable[str]) -> list[ActionSpec]:
        pats = tuple(patterns)
        found = self._matched.get(pats)
        if found is None:
            found = self._matched[pats] = [s for s in self if permitted_by(pats, s.name)]
        return list(found)

    def subset(self, patterns: Iterable[str]) -> ActionRegistry:
        sub = ActionRegistry()
        sub._specs = {s.name: s for s in self.matching(patterns)}
        sub.titles = self.titles
        return sub

    def describe(self) -> list[dict[str, Any]]:
        return [
            {"name": s.name, "risk": s.risk.value, "source": s.source, "description": s.description}
            for s in self
        ]


def permitted_by(patterns: Iterable[str], name: str) -> bool:
    """Whether glob ``patterns`` permit the action ``name``: some pattern matches it and
    no ``!pattern`` does (``["*", "!payments.*"]``: everything but payments)."""
    pats = list(patterns)
    if any(p.startswith("!") and fnmatch.fnmatchcase(name, p[1:]) for p in pats):
        return False
    return any(not p.startswith("!") and fnmatch.fnmatchcase(name, p) for p in pats)


def load_plugins(
    registry: ActionRegistry | None = None, settings: Settings | None = None
) -> ActionRegistry:
    """Load every installed plugin. A broken plugin is reported, never fatal.

    ``settings`` (:class:`openlam.config.Settings`) reaches plugins whose ``register``
    takes a second parameter.
    """
    registry = registry if registry is not None else ActionRegistry()
    for ep in sorted(entry_points(group=PLUGIN_GROUP), key=lambda e: e.name):
        try:
            module = importlib.import_module(ep.value.split(":")[0])
            registry.add_module(module, source=ep.name, settings=settings)
        except Exception as exc:  # a plugin's bug must not take the workforce down
            message = f"plugin {ep.name} ({ep.value}) failed to load: {exc}"
            registry.load_errors.append(message)
            log.warning(message)
    return registry


def _takes_settings(register: Any) -> bool:
    try:
        params = list(inspect.signature(register).parameters.values())
    except (TypeError, ValueError):
        return False
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 2 or any(p.kind is p.VAR_POSITIONAL for p in params)


def action_summary(spec: Any) -> dict[str, Any]:
    """An action as ``openlam actions list --json`` and the server show it."""
    from openlam.actions.risk import reason_of

    return {
        "name": spec.name,
        "risk": spec.risk.value,
        "risk_reason": reason_of(spec),
        "source": spec.source,
        "egress": bool(getattr(spec, "egress", False)),
        "description": spec.description,
    }
