"""References between steps: ``${s1.output.email}`` names a field of step s1's output.

Tools of other frameworks (and many MCP tools) return JSON as text: a field reference
reaches into such text as into the object it encodes (``${s1.output.id}`` on the output
``'{"id": 7}'`` or ``{"text": '{"id": 7}'}``), while ``${s1.output}`` stays the text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from openlam.validation import whole_number

REF = re.compile(r"\$\{([A-Za-z0-9_-]+)\.output((?:\.[A-Za-z0-9_-]+)*)\}")


class ReferenceError_(LookupError):
    """A reference names a step or field that does not exist."""


def find_refs(value: Any) -> Iterator[tuple[str, list[str]]]:
    """Every (step id, field path) referenced anywhere inside ``value``."""
    if isinstance(value, str):
        for m in REF.finditer(value):
            yield m.group(1), [p for p in m.group(2).split(".") if p]
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from find_refs(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from find_refs(v)


def is_whole_ref(value: Any) -> bool:
    return isinstance(value, str) and REF.fullmatch(value.strip()) is not None


def resolve(value: Any, outputs: Mapping[str, Any]) -> Any:
    """Substitute references with real outputs. A string that is exactly one reference
    takes the referenced value with its type; references inside text become text."""
    if isinstance(value, str):
        whole = REF.fullmatch(value.strip())
        if whole:
            return _lookup(outputs, whole.group(1), whole.group(2))
        return REF.sub(lambda m: _as_text(_lookup(outputs, m.group(1), m.group(2))), value)
    if isinstance(value, Mapping):
        return {k: resolve(v, outputs) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [resolve(v, outputs) for v in value]
    return value


def render(template: str, output_of: Callable[[str], Any]) -> str:
    """A text with every reference replaced by the value it names; ``output_of(step)``
    gives a step's output or raises KeyError. Raises :class:`ReferenceError_`."""

    def value(m: re.Match[str]) -> str:
        try:
            output = output_of(m.group(1))
        except KeyError:
            raise ReferenceError_(f"step {m.group(1)} did not succeed") from None
        return _as_text(follow(output, m.group(1), m.group(2)))

    return REF.sub(value, template)


def _lookup(outputs: Mapping[str, Any], step: str, path: str) -> Any:
    if step not in outputs:
        raise ReferenceError_(f"step {step} has no output")
    return follow(outputs[step], step, path)


def follow(current: Any, step: str, path: str) -> Any:
    """The value at ``path`` (``.a.b.0``) inside a step's output."""
    for part in filter(None, path.split(".")):
        current = _json_text(current, part)
        if isinstance(current, Mapping) and part in current:
            current = current[part]
        elif (
            isinstance(current, list)
            and (at := whole_number(part)) is not None
            and at < len(current)
        ):
            current = current[at]
        else:
            raise ReferenceError_(f"output of step {step} has no field {part!r}")
    return current


def _json_text(value: Any, part: str) -> Any:
    """``value`` as the JSON object or array its text encodes, when a field is wanted
    from text (or from ``{"text": …}`` that lacks the field); else ``value`` unchanged."""
    text = value
    if isinstance(value, Mapping):
        if part in value or not isinstance(value.get("text"), str):
            return value
        text = value["text"]
    if not isinstance(text, str) or not text.lstrip().startswith(("{", "[")):
        return value
    try:
        parsed = json.loads(text)
    except (ValueError, RecursionError):  # a tool's text nested too deep stays text
        return value
    return parsed if isinstance(parsed, Mapping | list) else value


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
