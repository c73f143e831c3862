"""The organisation's vocabulary: departments, agents and their budgets (pydantic).

These models check one entry at a time (field types, id format, glob syntax); rules
that span entries (managers exist, one tree, no cycles) live in :mod:`openlam.org.loader`.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

Id = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
"""Lower-case letters, digits and underscores, starting with a letter."""

# A glob over action names (`crm.*`, `email.send`, `documents.*`): fnmatch syntax.
_GLOB = re.compile(r"^[A-Za-z0-9_\-*?\[\]!]+(\.[A-Za-z0-9_\-*?\[\]!]+)*$")


def _text(value: str) -> str:
    """Collapse the line breaks a YAML block leaves into single spaces."""
    return " ".join(value.split())


class Budget(BaseModel):
    """Per-run limits for one agent; unset means the workspace's defaults apply."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_steps: int | None = Field(default=None, ge=1, le=500)
    max_model_requests: int | None = Field(default=None, ge=1, le=1000)


class Department(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Id
    name: str = Field(min_length=1, max_length=80)
    description: str = Field(min_length=1)
    keywords: tuple[str, ...] = ()

    @field_validator("name", "description")
    @classmethod
    def _strip(cls, value: str) -> str:
        return _text(value)

    @field_validator("keywords")
    @classmethod
    def _keywords(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        cleaned = tuple(_text(k).lower() for k in value)
        if any(not k for k in cleaned):
            raise ValueError("keywords must not be empty strings")
        return cleaned


class Agent(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Id
    name: str = Field(min_length=1, max_length=80)
    title: str = Field(min_length=1, max_length=120)
    department: Id
    manager: Id | None
    instructions: str = Field(min_length=20, max_length=4000)
    actions: tuple[str, ...] = ()
    model: str | None = Field(default=None, min_length=1)
    budget: Budget | None = None

    @field_validator("name", "title", "instructions")
    @classmethod
    def _strip(cls, value: str) -> str:
        return _text(value)

    @field_validator("actions")
    @classmethod
    def _globs(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [p for p in value if not _GLOB.match(p)]
        if bad:
            raise ValueError(
                f"not a glob over action names: {', '.join(map(repr, bad))} "
                "(expected names like 'email.send' or 'crm.*')"
            )
        if len(set(value)) != len(value):
            raise ValueError("a pattern is listed twice")
        return value
