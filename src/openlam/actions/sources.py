"""Named sources of actions configured in a workspace: MCP servers, OpenAPI services.

Each kind keeps its configuration in ``.openlam/<kind>.json`` (``{"<key>": {NAME: {…}}}``)
and, per source, what was learned from it (a server's tool list, a service's compiled
operations) in ``.openlam/cache/<kind>/NAME.json``. Loading the registry reads only these
files, so no server is started and no spec fetched just because ``openlam`` ran.

Every source carries what the user said about it (:class:`SourceConfig`): whether they
vouch for it (``trusted``: its own risk hints are believed), per-action risk tiers
(``risk``), and which agents may use its actions (``grants``).
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from openlam.errors import UserError

if TYPE_CHECKING:
    from openlam.actions.spec import ActionSpec

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")
RESERVED_NAMES = frozenset(
    {
        "files",
        "http",
        "email",
        "crm",
        "web",
        "search",
        "browser",
        "documents",
        "social",
        "payments",
        "human",
        "mcp",
        "openapi",
        "delegate",
        "ask_human",
        "request_capability",
    }
)

DEFAULT_GRANTS: tuple[str, ...] = ("operator",)
"""Who may use a new source's actions unless the user says otherwise: the operator, the
generalist the chief of staff hands routine work to."""
GRANT_PATTERN = re.compile(r"^(all|department:[a-z][a-z0-9_]{0,63}|[a-z][a-z0-9_]{0,63})$")
RISK_TIERS = ("read", "write", "external", "financial", "destructive")

Config = TypeVar("Config", bound="SourceConfig")


@dataclass
class SourceConfig:
    """What every source's configuration holds besides how to reach it."""

    name: str
    risk: dict[str, str] = field(default_factory=dict, kw_only=True)
    """Action (tool or operation) → risk tier the user set (``--risk NAME=TIER``)."""
    trusted: bool = field(default=False, kw_only=True)
    """The user vouches for the source, so its own risk hints are believed."""
    grants: list[str] = field(default_factory=lambda: list(DEFAULT_GRANTS), kw_only=True)
    """Who may use its actions: agent ids, ``department:ID`` or ``all``."""

    def __post_init__(self) -> None:
        for action, tier in self.risk.items():
            if tier not in RISK_TIERS:
                raise UserError(
                    f"{self.name}: {action} has unknown risk {tier!r}",
                    f"use one of {', '.join(RISK_TIERS)}",
                )
        self.grants = [check_grant(g) for g in self.grants]

    def describe(self) -> str:
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        """The entry written to the configuration file: what differs from the defaults,
        plus what the user decided about trust and access (always written, so the file
        says it)."""
        data = dataclasses.asdict(self)
        data.pop("name")
        defaults = {
            f.name: f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
            for f in dataclasses.fields(self)
            if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        }
        return {
            k: v
            for k, v in data.items()
            if k in ("trusted", "grants") or k not in defaults or v != defaults[k]
        }


def check_grant(text: str) -> str:
    """``AGENT_ID``, ``department:ID`` or ``all`` (syntax only; the catalog checks ids)."""
    grant = text.strip()
    if not GRANT_PATTERN.match(grant):
        raise UserError(
            f"{text!r} is not a grant",
            "grant to an agent id (operator), a department (department:data) or everyone (all)",
        )
    return grant


def check_overrides(what: str, overrides: Iterable[str], known: Iterable[str]) -> None:
    """Refuse per-action settings (``--risk NAME=TIER``) naming no action of the source,
    naming the close matches (a typo must not be saved silently)."""
    names = sorted(set(known))
    unknown = [o for o in overrides if o not in names]
    if not unknown:
        return
    parts = []
    for name in unknown:
        close = difflib.get_close_matches(name, names, n=3, cutoff=0.6)
        parts.append(f"{name} (did you mean {', '.join(close)}?)" if close else name)
    raise UserError(
        f"--risk names no {what}: {'; '.join(parts)}",
        f"its names are: {', '.join(names[:30])}{' …' if len(names) > 30 else ''}",
    )


def reserved_names() -> set[str]:
    """Prefixes taken by installed plugins (entry points) and the planner's special steps."""
    from importlib.metadata import entry_points

    from openlam.actions.registry import PLUGIN_GROUP

    return set(RESERVED_NAMES) | {ep.name for ep in entry_points(group=PLUGIN_GROUP)}


class Sources(Generic[Config]):
    """The configured sources of one kind and their caches.

    ``config`` is the dataclass of one source (its first field ``name``), kept under
    ``key`` in the file; ``what`` names a source in messages ("MCP server"), ``member``
    one of its actions ("tool"); ``openlam KIND <refresh> NAME`` fills its cache, which
    ``valid`` checks (a cache of an older format is as good as none).
    """

    def __init__(
        self,
        kind: str,
        config: type[Config],
        *,
        key: str,
        what: str,
        member: str,
        refresh: str,
        valid: Callable[[dict[str, Any]], bool],
        indent: int,
        members: Callable[[dict[str, Any]], list[tuple[str, str]]],
    ) -> None:
        self.kind, self.config, self.key = kind, config, key
        self.what, self.member, self.refresh = what, member, refresh
        self.valid, self.indent = valid, indent
        self.members = members
        """(name, description) of each action a cache describes, by its name in the
        source (a tool's name, an operation's action name)."""

    def check_name(self, name: str) -> str:
        """A usable name: it becomes the prefix of the source's actions."""
        if not NAME_PATTERN.match(name):
            raise UserError(
                f"{name!r} is not a usable {self.what} name",
                "use lower-case letters, digits, - and _, starting with a letter "
                f"(it becomes the prefix of the actions: NAME.{self.member})",
            )
        if name in reserved_names():
            raise UserError(
                f"{name!r} is the name of an installed plugin",
                "choose another name, so that its actions do not collide",
            )
        return name

    # -- the configuration file ------------------------------------------------------

    def config_path(self, settings: Any) -> Path:
        return Path(settings.state_dir) / f"{self.kind}.json"

    def load(self, settings: Any) -> dict[str, Config]:
        """Every configured source by name; a malformed file or entry is a UserError."""
        path = self.config_path(settings)
        data = _read_json(path, default={self.key: {}})
        entries = data.get(self.key)
        if not isinstance(entries, dict):
            raise UserError(f'{path} has no "{self.key}" object', "fix the file or remove it")
        return {name: self._parse(name, entry, path) for name, entry in sorted(entries.items())}

    def get(self, settings: Any, name: str) -> Config:
        """The source called ``name``; if there is none, a UserError naming those there are."""
        configured = self.load(settings)
        if name not in configured:
            raise UserError(
                f"no {self.what} named {name}",
                f"configured: {', '.join(configured) or 'none'}; add one with "
                f"`openlam {self.kind} add`",
            )
        return configured[name]

    def update(self, settings: Any, name: str, **changes: Any) -> Config:
        """Change fields of a configured source (``trusted``, ``grants``…) and save it."""
        updated = dataclasses.replace(self.get(settings, name), **changes)
        self.save(settings, name, updated.to_dict())
        return updated

    def save(self, settings: Any, name: str, entry: dict[str, Any]) -> None:
        path = self.config_path(settings)
        with _one_writer(path):
            data = _read_json(path, default={self.key: {}})
            data.setdefault(self.key, {})[name] = entry
            _write_json(path, data, self.indent)

    def remove(self, settings: Any, name: str) -> bool:
        """Forget a source and its cache; False if none had that name."""
        path = self.config_path(settings)
        with _one_writer(path):
            data = _read_json(path, default={self.key: {}})
            found = data.get(self.key, {}).pop(name, None) is not None
            if found:
                _write_json(path, data, self.indent)
        self.cache_path(settings, name).unlink(missing_ok=True)
        return found

    def _parse(self, name: str, entry: Mapping[str, Any], where: Path) -> Config:
        known = {f.name for f in dataclasses.fields(self.config)} - {"name"}
        unknown = set(entry) - known
        if unknown:
            raise UserError(
                f"{where}: {self.what} {name} has unknown keys {sorted(unknown)}",
                f"allowed keys: {', '.join(sorted(known))}",
            )
        try:
            return self.config(**{**entry, "name": name})
        except UserError as exc:
            raise UserError(f"{where}: {self.what} {exc.args[0]}", exc.hint) from None
        except TypeError as exc:
            raise UserError(
                f"{where}: {self.what} {name} is malformed: {exc}",
                f"fix the file or add it again with `openlam {self.kind} add`",
            ) from None

    # -- the caches ------------------------------------------------------------------

    def cache_path(self, settings: Any, name: str) -> Path:
        return Path(settings.state_dir) / "cache" / self.kind / f"{name}.json"

    def read_cache(self, settings: Any, name: str) -> dict[str, Any] | None:
        """A source's cache, or None when it is missing, unreadable or not ``valid``."""
        try:
            data = json.loads(self.cache_path(settings, name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) and self.valid(data) else None

    def write_cache(self, settings: Any, name: str, data: dict[str, Any]) -> None:
        # Keys keep their order: a schema's properties are listed as the source wrote them.
        _write_json(self.cache_path(settings, name), data, self.indent, sort_keys=False)

    def register(
        self,
        registry: Any,
        settings: Any,
        specs: Callable[[Any, Config, dict[str, Any]], Iterable[ActionSpec]],
    ) -> None:
        """A plugin's ``register``: the actions ``specs`` makes of each source's cache
        (from settings, configuration, cache). A source without a cache is skipped, with
        a load error naming the command that makes one."""
        if settings is None:
            from openlam.config import load_settings

            settings = load_settings()
        for name, config in self.load(settings).items():
            cache = self.read_cache(settings, name)
            if cache is None:
                registry.load_errors.append(
                    f"{self.what} {name} has nothing cached yet; run `openlam {self.kind} "
                    f"{self.refresh} {name}` to read what it offers"
                )
                continue
            for spec in specs(settings, config, cache):
                registry.add(spec)
            registry.titles[name] = _title(cache)


def _title(cache: dict[str, Any]) -> str:
    """What a source calls itself: an OpenAPI spec's title, an MCP server's name."""
    info = cache.get("server_info")
    return str(cache.get("title") or (info.get("name") if isinstance(info, dict) else "") or "")


def _read_json(path: Path, default: dict[str, Any]) -> dict[str, Any]:
    if not path.exists():
        return default
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise UserError(f"{path} is not valid JSON: {exc}", "fix the file or remove it") from None
    if not isinstance(data, dict):
        raise UserError(f"{path} must hold a JSON object", "fix the file or remove it")
    return data


def _one_writer(path: Path) -> Any:
    """A lock held while ``path`` is read, changed and written: two `mcp add` at once
    (two terminals, a script) must not each write the file without the other's server."""
    from filelock import FileLock

    path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(path.with_name(f".{path.name}.lock"))


def _write_json(path: Path, data: Any, indent: int, *, sort_keys: bool = True) -> None:
    """Write through a temporary file, so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=indent, sort_keys=sort_keys) + "\n", encoding="utf-8")
    tmp.replace(path)
