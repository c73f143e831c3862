"""References between steps: ``${s1.output.email}`` names a field of step s1's output."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

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


def _lookup(outputs: Mapping[str, Any], step: str, path: str) -> Any:
    if step not in outputs:
        raise ReferenceError_(f"step {step} has no output")
    current = outputs[step]
    for part in filter(None, path.split(".")):
        if isinstance(current, Mapping) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            raise ReferenceError_(f"output of step {step} has no field {part!r}")
    return current


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
