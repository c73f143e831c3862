"""The JSON value in a model's reply text.

Models wrap it: in a ```json fence, after a sentence, or after their reasoning
(``<think>…</think>``, which may itself hold braces and JSON-looking examples). The
reasoning is dropped; then the whole text, each fenced block, and each JSON object or
array in the text, in order, are tried until one is what the caller wants.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.S)
MAX_STARTS = 200  # brackets tried as the start of a value (a reply is a few KB)


def without_reasoning(text: str) -> str:
    """``text`` without the ``<think>…</think>`` blocks reasoning models put first.

    Found with ``str.find``, not a lazy regex, which restarted at every unclosed
    ``<think>``: a reply of 150,000 of them took minutes."""
    lower, kept, at = text.lower(), [], 0
    while (start := lower.find("<think>", at)) != -1:
        end = lower.find("</think>", start)
        if end == -1:
            break
        kept.append(text[at:start])
        at = end + len("</think>")
    kept.append(text[at:])
    return "".join(kept).strip()


def json_in(text: str, wanted: Callable[[Any], bool] = lambda _v: True) -> Any | None:
    """The first JSON value in ``text`` for which ``wanted`` is true, or None."""
    return next((v for v in _values(without_reasoning(text)) if wanted(v)), None)


_NONE = object()  # "no JSON here" (None is a JSON value)


def _values(text: str) -> Iterator[Any]:
    for chunk in (text, *_FENCE.findall(text)):
        value = _whole(chunk)
        if value is not _NONE:
            yield value
    decoder = json.JSONDecoder()
    for start in [i for i, ch in enumerate(text) if ch in "{["][:MAX_STARTS]:
        value = _starting_at(decoder, text, start)
        if value is not _NONE:
            yield value


def _whole(chunk: str) -> Any:
    try:
        return json.loads(chunk)
    except (ValueError, RecursionError):  # nested deeper than Python's stack: not a plan
        return _NONE


def _starting_at(decoder: json.JSONDecoder, text: str, start: int) -> Any:
    try:
        return decoder.raw_decode(text, start)[0]
    except (ValueError, RecursionError):
        return _NONE
