"""Compact text for the argument schemas of imported actions, for the planner's prompt.

``ActionSpec.signature()`` names each argument with a short type (``flights:
list[dict]``); an imported operation's arguments often hide what matters inside —
the fields of nested objects, the allowed values of an enum. :func:`argument_details`
writes those compactly (``cabin: basic_economy|economy|business; flights:
list[{flight_number: str, date: str}]``) so the planner can fill them in.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

SCALARS = {
    "string": "str",
    "integer": "int",
    "number": "float",
    "boolean": "bool",
    "null": "null",
    "object": "dict",
    "array": "list",
}
MAX_ENUM = 12
MAX_FIELDS = 12
MAX_DEPTH = 3
MAX_CHARS = 600
_SENTENCE_END = re.compile(r"([.!?])\s+")


def type_text(schema: Any, depth: int = 0) -> str:
    """``str``, ``a|b|c``, ``list[{x: int, y?: str}]``, ``{…}`` beyond the depth limit."""
    if not isinstance(schema, Mapping):
        return "any"
    if "enum" in schema and isinstance(schema["enum"], list):
        values = [str(v) for v in schema["enum"][:MAX_ENUM]]
        return "|".join(values) + ("|…" if len(schema["enum"]) > MAX_ENUM else "")
    if "const" in schema:
        return str(schema["const"])
    for key in ("anyOf", "oneOf"):
        if isinstance(schema.get(key), list):
            kinds = dict.fromkeys(type_text(s, depth) for s in schema[key])
            return " | ".join(kinds)
    kind = schema.get("type")
    if isinstance(kind, list):
        return " | ".join(type_text({**schema, "type": k}, depth) for k in kind)
    if kind == "array" or "items" in schema:
        return f"list[{type_text(schema.get('items'), depth)}]"
    props = schema.get("properties")
    if isinstance(props, Mapping) and props:
        if depth >= MAX_DEPTH:
            return "{…}"
        required = schema.get("required")
        required = {r for r in required if isinstance(r, str)} if isinstance(required, list) else ()
        parts = [
            f"{n}{'' if n in required else '?'}: {type_text(p, depth + 1)}"
            for n, p in list(props.items())[:MAX_FIELDS]
        ]
        more = ", …" if len(props) > MAX_FIELDS else ""
        return "{" + ", ".join(parts) + more + "}"
    return SCALARS.get(str(kind), "any") if kind else "any"


def needs_detail(schema: Any) -> bool:
    """Whether an argument's short type (``str``, ``dict``, ``list[dict]``) hides fields
    or allowed values."""
    if not isinstance(schema, Mapping):
        return False
    if "enum" in schema or "const" in schema:
        return True
    if isinstance(schema.get("properties"), Mapping) and schema["properties"]:
        return True
    if any(
        isinstance(schema.get(k), list) and any(needs_detail(s) for s in schema[k])
        for k in ("anyOf", "oneOf")
    ):
        return True
    return needs_detail(schema.get("items"))


def argument_details(input_schema: Mapping[str, Any]) -> str:
    """``name: type; …`` for the arguments whose short type hides something; '' if none.
    One sentence (no full stop inside), so it survives being cut to a first sentence."""
    props = input_schema.get("properties") if isinstance(input_schema, Mapping) else None
    if not isinstance(props, Mapping):  # a server may send any JSON as a schema
        return ""
    parts = [f"{name}: {type_text(prop)}" for name, prop in props.items() if needs_detail(prop)]
    text = _SENTENCE_END.sub(r"\1", "; ".join(parts))
    return text if len(text) <= MAX_CHARS else text[: MAX_CHARS - 1] + "…"


def with_details(description: str, input_schema: Mapping[str, Any]) -> str:
    """The description with the arguments' details inside its first sentence."""
    details = argument_details(input_schema)
    if not details:
        return description
    first, _, rest = (
        re.split(r"(?<=[.!?])(\s)", description.strip(), maxsplit=1)
        if re.search(r"[.!?]\s", description)
        else (description.strip(), "", "")
    )
    first = first.rstrip(".")
    return f"{first} (arguments: {details})." + (f" {rest.strip()}" if rest.strip() else "")
