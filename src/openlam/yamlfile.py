"""YAML that remembers where things were written, for error messages naming file:line.

Policy files and the agent catalog are written by hand: a problem in them is reported at
its line. :func:`load` parses with PyYAML (its C loader when built) and returns mappings
as :class:`LineDict` (a dict that knows its own line and each key's line). A key given
twice is not an error here: it is returned in ``duplicates`` so the caller reports it
with its other problems.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml

_Base: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class LineDict(dict[Any, Any]):
    """A YAML mapping with the 1-based line of the mapping and of each key."""

    line: int = 0
    key_lines: dict[Any, int]

    def line_of(self, key: Any = None) -> int:
        """The line of ``key`` (of the mapping itself when it is absent or None)."""
        return self.line if key is None else self.key_lines.get(key, self.line)


def line_of(node: Any, key: Any = None, fallback: int = 1) -> int:
    """The line of ``node`` (or of its ``key``); ``fallback`` for a value that is no
    mapping, whose line YAML does not keep (a scalar, a list)."""
    return node.line_of(key) if isinstance(node, LineDict) else fallback


@dataclass(frozen=True)
class YamlSyntaxError(Exception):
    """Text that is not YAML: where and what, in words for the person who wrote it."""

    line: int
    problem: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.problem}"


@dataclass
class Loaded:
    data: Any
    duplicates: list[tuple[int, str]]
    """(line, message) of each key written twice in one mapping; the last value wins."""


class _Loader(_Base):  # type: ignore[misc, valid-type]
    duplicates: list[tuple[int, str]]


def _mapping(loader: _Loader, node: yaml.MappingNode) -> Iterator[LineDict]:
    data = LineDict()
    data.line = node.start_mark.line + 1
    data.key_lines = {}
    yield data  # first, so anchors and aliases may refer to it (a two-step constructor)
    loader.flatten_mapping(node)
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)  # type: ignore[arg-type]
        line = key_node.start_mark.line + 1
        if key in data:
            loader.duplicates.append(
                (line, f"duplicate key {key!r} (also at line {data.key_lines[key]}); keep one")
            )
        data[key] = loader.construct_object(value_node, deep=True)  # type: ignore[arg-type]
        data.key_lines[key] = line


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)  # type: ignore[arg-type]


def load(text: str) -> Loaded:
    """Parse one YAML document; raises :class:`YamlSyntaxError` for text that is not YAML."""
    loader = _Loader(text)
    loader.duplicates = []
    try:
        data = loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = " ".join(str(exc.problem or exc).split())
        context = exc.context_mark
        if exc.context and context is not None and mark is not None and context.line != mark.line:
            problem += f" ({exc.context} that starts at line {context.line + 1})"
        raise YamlSyntaxError(mark.line + 1 if mark else 1, problem) from None
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(1, " ".join(str(exc).split())) from None
    finally:
        loader.dispose()
    return Loaded(data, loader.duplicates)
