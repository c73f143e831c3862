"""Errors, in three families.

* ``UserError`` — bad input from a person (config, CLI arguments, plugin files). Shown
  as one clear message with a hint; never a traceback.
* ``ActionError`` — an action could not do its job. ``transient`` ones are retried.
* Control flow — ``CapabilityGap`` and ``PlannerDeclined`` end a run honestly.
"""

from __future__ import annotations


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
