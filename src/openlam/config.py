"""Settings: environment variables override ``openlam.toml`` in the workspace.

A workspace is a directory holding a run's files, the SQLite databases and the
configuration. Everything has a default so a fresh install works with no setup.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

from openlam.errors import UserError, not_utf8

CONFIG_FILE = "openlam.toml"
STATE_DIR = ".openlam"
DEFAULT_MODEL_TIMEOUT = 60.0  # seconds one model request may take, retries included


@dataclass(frozen=True)
class Settings:
    workspace: Path
    model: str | None = None
    openai_base_url: str | None = None
    openai_api_key: str | None = None
    ollama_url: str = "http://127.0.0.1:11434"
    database_url: str | None = None
    max_steps: int = 20
    max_replans: int = 2
    max_plan_repairs: int = 2
    step_timeout: float = 60.0
    step_retries: int = 2
    model_timeout: float = DEFAULT_MODEL_TIMEOUT
    max_delegations: int = 12
    max_delegation_depth: int = 3
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def state_dir(self) -> Path:
        return self.workspace / STATE_DIR

    @property
    def app_database_url(self) -> str:
        return self.database_url or sqlite_url(self.state_dir / "openlam.db")

    @property
    def system_database_url(self) -> str:
        """DBOS's own database: the same PostgreSQL, or a second SQLite file."""
        return self.database_url or sqlite_url(self.state_dir / "dbos.sqlite")

    def with_overrides(self, **changes: Any) -> Settings:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


_ENV = {
    "model": "OPENLAM_MODEL",
    "openai_base_url": "OPENLAM_OPENAI_BASE_URL",
    "openai_api_key": "OPENAI_API_KEY",
    "ollama_url": "OPENLAM_OLLAMA_URL",
    "database_url": "OPENLAM_DATABASE_URL",
}
_NUMBERS = {
    "max_steps": int,
    "max_replans": int,
    "max_plan_repairs": int,
    "step_timeout": float,
    "step_retries": int,
    "model_timeout": float,
    "max_delegations": int,
    "max_delegation_depth": int,
}
MAX_PRIORITY = 1_000_000  # a run's priority on its queue: 1 (most urgent) to this

# The least each may be: a run needs a step and some time for it; none can be negative.
_LEAST = {"max_steps": 1, "step_timeout": 0.0, "model_timeout": 0.0}


_refuse_missing = False  # the CLI's rule, set once per process by refuse_missing_workspaces()


def sqlite_url(path: Path) -> str:
    """The SQLAlchemy URL of the SQLite file at ``path``. The path is percent-quoted: a
    folder named like ``q?x`` or ``100%25`` would otherwise be read as a query string or
    an escape, and the database would land somewhere else (``/tmp/q``)."""
    return "sqlite:///" + quote(str(path), safe="/")


def refuse_missing_workspaces() -> None:
    """From now on :func:`load_settings` refuses a workspace directory that does not exist.

    The CLI calls this at its start: a mistyped ``--workspace`` or ``OPENLAM_WORKSPACE``
    must not silently start a new, empty workspace. The Python API creates the directory.
    """
    global _refuse_missing
    _refuse_missing = True


def load_settings(
    workspace: str | Path | None = None, *, must_exist: bool | None = None
) -> Settings:
    """The settings of ``workspace`` (default ``$OPENLAM_WORKSPACE``, else the current
    directory). ``must_exist`` refuses a directory that does not exist; by default the
    process's rule applies (see :func:`refuse_missing_workspaces`)."""
    ws = Path(workspace or os.environ.get("OPENLAM_WORKSPACE") or Path.cwd()).resolve()
    if (_refuse_missing if must_exist is None else must_exist) or ws.exists():
        _check_exists(ws)  # a file is refused either way: nothing could be made in it
    raw = _read_toml(ws / CONFIG_FILE)
    _check_tables(raw, ws / CONFIG_FILE)
    values: dict[str, Any] = {}
    section = raw.get("openlam", raw)
    for key in (*_ENV, *_NUMBERS):
        if key in section:
            values[key] = section[key]
    for key, env in _ENV.items():
        if os.environ.get(env):
            values[key] = os.environ[env]
    for key, kind in _NUMBERS.items():
        env = f"OPENLAM_{key.upper()}"
        if os.environ.get(env):
            values[key] = os.environ[env]
        if key in values:
            values[key] = _number(key, kind, values[key], env, ws / CONFIG_FILE)
    if os.environ.get("OPENLAM_OPENAI_BASE_URL") is None and os.environ.get("OPENAI_BASE_URL"):
        values["openai_base_url"] = os.environ["OPENAI_BASE_URL"]
    if "database_url" in values:
        _check_database_url(values["database_url"], ws / CONFIG_FILE)
    return Settings(workspace=ws, raw=raw, **values)


def _number(key: str, kind: type, value: Any, env: str, path: Path) -> Any:
    """``value`` of setting ``key`` as a whole number (``kind`` int) or a finite number of
    seconds above 0 (float), at least its least; else a UserError saying which."""
    least = _LEAST.get(key, 0)
    try:
        whole = kind is int and isinstance(value, float) and not value.is_integer()
        number = None if isinstance(value, bool) or whole else kind(value)
    except (TypeError, ValueError, OverflowError):
        number = None
    if kind is float:
        ok = number is not None and math.isfinite(number) and number > least
        want = "a number of seconds above 0"
    else:
        ok = number is not None and number >= least
        want = f"a whole number of at least {least}"
    if not ok:
        default = getattr(Settings, key)
        raise UserError(
            f"setting {key} must be {want}, got {value!r}",
            f"e.g. {env}={default:g}, or {key} = {default:g} under [openlam] in {path}",
        )
    return number


def _check_database_url(url: Any, path: Path) -> None:
    """OpenLAM keeps its data in PostgreSQL or SQLite (and DBOS its own, alike)."""
    scheme = url.split("://", 1)[0].split("+", 1)[0] if isinstance(url, str) else None
    if isinstance(url, str) and "://" in url and scheme in ("postgresql", "postgres", "sqlite"):
        return
    shown = re.sub(r"://([^:/@]*):[^@/]*@", r"://\1:***@", url) if isinstance(url, str) else url
    raise UserError(
        f"the database URL must be a PostgreSQL or SQLite one, got {shown!r}",
        "e.g. OPENLAM_DATABASE_URL=postgresql://USER@HOST:5432/DATABASE (or [openlam] "
        f"database_url in {path}); unset it to keep the workspace's own SQLite files",
    )


def _check_exists(ws: Path) -> None:
    if ws.is_dir():
        return
    import shlex

    elsewhere = "pass an existing directory with --workspace or OPENLAM_WORKSPACE"
    if ws.exists():  # a file: `openlam init` there would fail too
        raise UserError(f"the workspace {ws} is not a directory", elsewhere)
    raise UserError(
        f"the workspace {ws} does not exist",
        f"create it with `openlam init {shlex.quote(str(ws))}` (a directory made "
        f"with mkdir works too), or {elsewhere}",
    )


# The tables OpenLAM itself reads (plugins check their own with their config models).
TABLES = (
    "openlam", "runtime", "database", "governance", "audit", "server", "network", "web",
    "learning", "queues",
)  # fmt: skip


def _check_tables(raw: dict[str, Any], path: Path) -> None:
    for name in TABLES:
        if name in raw and not isinstance(raw[name], dict):
            raise UserError(
                f"{name} in {path} must be a table, not {raw[name]!r}",
                f"write [{name}] on a line of its own, then its settings as key = value",
            )


def _read_toml(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise not_utf8(path, exc) from None
    except tomllib.TOMLDecodeError as exc:
        raise UserError(
            f"{path} is not valid TOML: {exc}", "correct the file or remove it"
        ) from None


def _value(settings: Any, section: str, key: str, default: Any) -> Any:
    """``[section] key`` of openlam.toml as written (its tables are checked on load)."""
    return ((getattr(settings, "raw", {}) or {}).get(section) or {}).get(key, default)


def whole_number(settings: Any, section: str, key: str, default: int, minimum: int = 0) -> int:
    """``[section] key`` of openlam.toml: a whole number of at least ``minimum``."""
    value = _value(settings, section, key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise UserError(
            f"[{section}] {key} must be a whole number of at least {minimum} (got {value!r})",
            f"e.g. {key} = {default} in openlam.toml",
        )
    return value


def seconds(
    settings: Any, section: str, key: str, default: float, *, zero_ok: bool = False
) -> float:
    """``[section] key`` of openlam.toml: a number of seconds above zero (or zero)."""
    value = _value(settings, section, key, default)
    if (
        not isinstance(value, int | float)
        or isinstance(value, bool)
        or value < 0
        or (value == 0 and not zero_ok)
    ):
        least = "0 or more" if zero_ok else "above 0"
        raise UserError(
            f"[{section}] {key} must be a number of seconds {least} (got {value!r})",
            f"e.g. {key} = {default:g} in openlam.toml",
        )
    return float(value)


def policy_paths(settings: Any) -> list[Path]:
    """``[governance] policies = [...]`` in openlam.toml, else ``<workspace>/policies``
    (here, not in governance: the workspace's file protection needs them too)."""
    section = (getattr(settings, "raw", {}) or {}).get("governance", {})
    workspace = Path(settings.workspace)
    listed = section.get("policies")
    if listed:
        return [p if p.is_absolute() else workspace / p for p in map(Path, listed)]
    default = workspace / "policies"
    return [default] if default.is_dir() else []
