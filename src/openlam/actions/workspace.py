"""workspace: where actions may read and write files.

Every action that takes a file path (files, documents, browser screenshots, email
attachments, search folders…) turns it into a real path with :func:`resolve`, the one
chokepoint for paths:

* the path is relative to the run's workspace and resolved — ``..``, absolute paths and
  symbolic links followed to where they really lead — before it is checked, so nothing
  outside the workspace is reached;
* a write needs a file name: ``""``, ``"."``, a directory or a path ending in ``/`` is
  refused;
* the files the workforce acts under are not a workspace for actions. Writes are
  REFUSED (not approval-gated: no plan should rewrite the rules it runs under) to
  ``openlam.toml``; ``policies/`` and whatever ``[governance] policies`` names;
  ``agents/``; ``.openlam/`` (databases, secrets, MCP server and OpenAPI service
  definitions and their caches); a SQLite project database named by ``database_url``;
  and local files the configured MCP servers run or OpenAPI services are read from.
  Reads are refused in ``.openlam/`` and of the database (secrets, every run's data);
  policies, agents and the configuration may be read. A workspace nested inside (a
  folder with its own openlam.toml or .openlam/) is protected alike, and OpenLAM's
  secret key file is neither read nor written wherever it lies in the workspace.

Names are compared case-insensitively, so ``Policies/x.yaml`` is refused too on file
systems that ignore case.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openlam.actions.spec import ActionContext
from openlam.config import CONFIG_FILE, STATE_DIR, Settings, load_settings
from openlam.errors import ActionError

POLICIES_DIR = "policies"
AGENTS_DIR = "agents"  # openlam.org.loader.WORKSPACE_DIR


@dataclass(frozen=True)
class Protected:
    """A file or directory (everything under it) that actions may not write, or read."""

    path: Path
    why: str
    readable: bool = True

    def covers(self, target: Path) -> bool:
        mine, theirs = _fold(self.path), _fold(target)
        return theirs == mine or mine in theirs.parents


def resolve(where: ActionContext | Path, path: str, *, for_write: bool) -> Path:
    """The real path ``path`` names in the workspace, checked for reading or writing;
    an :class:`ActionError` saying what the path is and why it is refused otherwise."""
    workspace, settings = _workspace(where)
    root = workspace.resolve()
    text = path.strip()
    if for_write and (text in ("", ".", "./") or text.endswith(("/", "\\"))):
        raise ActionError(
            f"{path!r} names a directory, not a file; give a file path relative "
            "to the workspace, e.g. notes.md or reports/brief.md"
        )
    target = (root / text).resolve()
    if not target.is_relative_to(root):
        raise ActionError(
            f"path {path!r} leads outside the workspace {root}; give a path "
            "inside it, relative to it"
        )
    if for_write and (target == root or target.is_dir()):
        raise ActionError(
            f"{path!r} is a directory in the workspace; give a file name in it, "
            "e.g. reports/brief.md"
        )
    for rule in [*protected(root, settings), *_nested(root, target)]:
        if rule.covers(target) and (for_write or not rule.readable):
            shown = relative(root, target) or "."
            verb = "write" if for_write else "read"
            link = "" if shown == text.strip("/") else f" ({path!r} leads there)"
            raise ActionError(
                f"{shown}{link}: {rule.why}; actions may not {verb} there "
                f"(edit it yourself if you mean to)"
            )
    return target


def relative(where: ActionContext | Path, target: Path) -> str:
    """``target`` as a workspace-relative POSIX path (for results and messages)."""
    root = (where.workspace if isinstance(where, ActionContext) else where).resolve()
    rel = target.relative_to(root).as_posix()
    return "" if rel == "." else rel


def write_file(target: Path, chunks: Iterable[bytes], *, new_mode: int = 0o666) -> tuple[int, str]:
    """Write ``chunks`` to ``target``; returns (bytes written, their SHA-256).

    They go to a new hidden file beside it, renamed over it at the end: a reader never
    sees half a file, and concurrent writers never share a temporary file. A new file gets
    ``new_mode`` less the umask (what ``cp`` or an editor would make), a replaced one keeps
    its own permissions."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name[:200]}.{secrets.token_hex(6)}.tmp")
    digest, size = hashlib.sha256(), 0
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, new_mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            for chunk in chunks:
                handle.write(chunk)
                digest.update(chunk)
                size += len(chunk)
        if target.is_file():
            os.chmod(tmp, stat.S_IMODE(target.stat().st_mode))
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return size, digest.hexdigest()


def file_name(text: str) -> str:
    """``text`` (a run id, a key) as one file name: letters, digits, ``.``, ``_`` and ``-``
    kept, every other character (``/``, ``\\``, spaces…) ``_``, and no leading dot (``..``
    is not a name)."""
    name = "".join(c if c.isalnum() or c in "._-" else "_" for c in text)
    return "_" + name[1:] if name.startswith(".") else name or "_"


def file_sha256(path: Path) -> str:
    """The SHA-256 of the file at ``path``, read a block at a time."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def protected(root: Path, settings: Any) -> list[Protected]:
    """What actions may not touch in the workspace at ``root``."""
    from openlam.actions.secrets import key_file_path

    state = "holds the workspace's state (databases, secrets, action sources)"
    rules = [
        Protected(
            _real(key_file_path()),
            "it is OpenLAM's secret key (it decrypts every workspace's secrets)",
            readable=False,
        ),
        Protected(root / CONFIG_FILE, f"{CONFIG_FILE} is the workspace's configuration"),
        Protected(root / STATE_DIR, f"{STATE_DIR}/ {state}", readable=False),
        Protected(
            root / POLICIES_DIR, f"{POLICIES_DIR}/ holds the workspace's governance policies"
        ),
        Protected(root / AGENTS_DIR, f"{AGENTS_DIR}/ holds the workspace's agent definitions"),
    ]
    if settings is None:
        return rules
    from openlam.config import policy_paths

    for listed in policy_paths(settings):
        rules.append(
            Protected(
                _real(listed),
                "it is a governance policy named by [governance] policies in openlam.toml",
            )
        )
    database = _sqlite_file(getattr(settings, "database_url", None))
    if database is not None:
        rules.append(Protected(_real(database), "it is the project database", readable=False))
    rules += _source_files(root, settings)
    return rules


def _nested(root: Path, target: Path) -> list[Protected]:
    """The rules of the workspaces nested inside ``root`` on the way to ``target`` (a
    folder with its own openlam.toml or .openlam/): a run here may no more read another
    workspace's state, or rewrite its rules, than its own."""
    rules: list[Protected] = []
    for folder in target.parents:
        if folder == root or not folder.is_relative_to(root):
            break
        if (folder / STATE_DIR).is_dir() or (folder / CONFIG_FILE).is_file():
            rules += protected(folder, None)
    return rules


def _workspace(where: ActionContext | Path) -> tuple[Path, Any]:
    if isinstance(where, ActionContext):
        settings = where.settings
        if not isinstance(settings, Settings):
            settings = load_settings(where.workspace)
        return where.workspace, settings
    return where, load_settings(where)


def _fold(path: Path) -> Path:
    return Path(str(path).casefold())


def _real(path: Path) -> Path:
    return path.expanduser().resolve()


def _sqlite_file(url: str | None) -> Path | None:
    if not url or not url.startswith("sqlite"):
        return None
    from sqlalchemy.engine import make_url

    name = make_url(url).database
    return Path(name) if name and name != ":memory:" else None


def _source_files(root: Path, settings: Any) -> list[Protected]:
    """Local files the configured MCP servers run and OpenAPI services are read from: a
    plan that rewrote one would change the actions (or run its own code)."""
    from openlam.errors import UserError

    rules: list[Protected] = []
    try:
        from openlam.actions.mcp import SERVERS
        from openlam.actions.openapi import SERVICES

        servers = SERVERS.load(settings)
        services = SERVICES.load(settings)
    except (UserError, ImportError):  # a broken configuration loads no source anyway
        return rules
    for name, server in servers.items():
        if getattr(server, "transport", "") != "stdio":
            continue
        base = root / str(getattr(server, "cwd", None) or "")
        words = [
            str(getattr(server, "command", "") or ""),
            *map(str, getattr(server, "args", []) or []),
        ]
        for word in words:
            candidate = _real(base / word) if word and not word.startswith("-") else None
            if candidate is not None and candidate.is_file() and candidate.is_relative_to(root):
                rules.append(Protected(candidate, f"it is run by the MCP server {name}"))
    for name, service in services.items():
        spec = str(getattr(service, "spec", "") or "")
        if spec and not spec.startswith(("http://", "https://")):
            rules.append(
                Protected(_real(root / spec), f"it is the spec of the OpenAPI service {name}")
            )
    return rules
