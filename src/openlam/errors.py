"""Errors, in three families.

* ``UserError`` — bad input from a person (config, CLI arguments, plugin files). Shown
  as one clear message with a hint; never a traceback.
* ``ActionError`` — an action could not do its job. ``transient`` ones are retried.
* Control flow — ``CapabilityGap`` and ``PlannerDeclined`` end a run honestly.
"""

from __future__ import annotations

import errno


class OpenLAMError(Exception):
    """Base class of every error OpenLAM raises on purpose."""


class UserError(OpenLAMError):
    """Bad input a person can fix: the message names the problem, ``hint`` the fix."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint

    def __str__(self) -> str:
        base = super().__str__()
        return f"{base}\n  fix: {self.hint}" if self.hint else base


class ActionError(OpenLAMError):
    """An action failed. ``transient`` errors (timeouts, 5xx, refused connections) are retried."""

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


class ModelError(OpenLAMError):
    """The model could not be reached or answered with something unusable."""


class CapabilityGap(OpenLAMError):
    """The goal needs something no source provides."""

    def __init__(self, what: str, why: str) -> None:
        super().__init__(f"missing capability {what}: {why}")
        self.what = what
        self.why = why


class PlannerDeclined(OpenLAMError):
    """The planner cannot serve this goal (e.g. offline and no template matches)."""

    def __init__(self, reason: str, hint: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.hint = hint


def storage_trouble(exc: BaseException) -> Exception | None:
    """A UserError for ``exc`` (or what caused it) when a database or file could not be
    written — a full disk, a read-only file, a lock held too long — else None."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        text = str(getattr(exc, "orig", None) or exc)
        said = text.lower()
        if "disk is full" in said or "no space left" in said:
            return UserError(
                f"a disk is full: {text}",
                "free some space on the disk that holds the workspace (or the database "
                "server's); what runs did so far is kept, and an unfinished run resumes at "
                "the next start or with `openlam runs resume ID`",
            )
        if "readonly database" in said or "read-only file system" in said:
            return UserError(
                f"the database cannot be written: {text}",
                "check that this user may write the workspace's .openlam folder and its files",
            )
        if getattr(exc, "errno", None) == errno.EIO or "disk i/o error" in said:
            return UserError(
                f"the disk or file system failed to read or write: {text}",
                "check the disk, and the path if you gave one (files like those under /proc "
                "cannot be written); what runs did so far is kept",
            )
        if "database is locked" in said:
            return UserError(
                f"the database stayed busy: {text}",
                "another process held it for over 30 s: try again, and look for a stuck "
                "process with `openlam status`",
            )
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return None


def not_utf8(path: object, exc: UnicodeDecodeError) -> UserError:
    """The error for a text file at ``path`` that is not UTF-8 (a policy or openlam.toml
    saved as Latin-1 or Windows-1252 by an editor, say): where its first such byte is,
    and the fix."""
    line = exc.object[: exc.start].count(b"\n") + 1
    return UserError(
        f"{path} is not UTF-8 text: byte 0x{exc.object[exc.start]:02x} on line {line}",
        "save the file as UTF-8 (your editor's encoding setting)",
    )
