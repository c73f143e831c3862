"""Pydantic's validation errors in words for the person who wrote the input.

Hand-written files (the agent catalog, plugins' tables of openlam.toml) are validated
with pydantic models; :func:`explain` turns one of its errors into what to change.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel


def whole_number(text: str, max_digits: int = 18) -> int | None:
    """``text`` as a whole number written in ASCII digits, else None: ``str.isdigit``
    alone admits "²", which ``int`` refuses, and ``int`` refuses thousands of digits (a
    list index in a model's reference, a header, a line of a file may hold either)."""
    ok = text.isascii() and text.isdigit() and len(text) <= max_digits
    return int(text) if ok else None


def suggest(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``choices``, else nothing."""
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def explain(model: type[BaseModel], error: Any) -> str:
    """One pydantic error (an item of ``ValidationError.errors()``) of ``model``: an
    unknown field names the allowed ones, a wrong value what was given."""
    loc = [str(p) for p in error["loc"]]
    if error["type"] == "extra_forbidden":
        allowed = fields_at(model, loc[:-1])
        return (
            f"unknown field{suggest(loc[-1] if loc else '', allowed)} "
            f"(allowed: {', '.join(allowed) or 'none'})"
        )
    if error["type"] == "missing":
        return "required field is missing"
    given = error.get("input")
    shown = f" (got {given!r})" if given is not None and not isinstance(given, dict) else ""
    return f"{error['msg']}{shown}"


def fields_at(model: type[BaseModel], path: list[str]) -> list[str]:
    """The fields (by the name they are written with) of the nested model at ``path``."""
    for part in path:
        field = next((f for n, f in model.model_fields.items() if (f.alias or n) == part), None)
        annotation = field.annotation if field else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return [f.alias or n for n, f in model.model_fields.items()]
