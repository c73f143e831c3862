"""Everything the workspace has learned, in one JSON document for people to review
(``openlam learn dump``): playbooks, lessons, tool reliability per action and per
source, and each agent's record per kind of goal.

Playbooks hold no email address or secret except as a parameter (``{p1}``); lessons
and recorded errors are kept to an address's domain when learned. The dump checks
again over the whole document: every known secret of the workspace is masked and every
email address left anywhere is kept to its domain — so the file can be shared.
"""

from __future__ import annotations

import re
import time
from typing import Any

from openlam.learning.literals import TYPES
from openlam.learning.store import LearningStore

FORMAT = "openlam-learned/1"
_EMAIL = re.compile(TYPES["email"])


def private(text: str) -> str:
    """Email addresses kept to their domain: ``<someone>@example.org``."""
    return _EMAIL.sub(lambda m: "<someone>@" + m.group().split("@", 1)[1], text)


def learned(store: LearningStore, redact: Any = lambda v: v) -> dict[str, Any]:
    """The review document; ``redact`` masks the workspace's secrets."""
    tools = store.tool_stats()
    document = {
        "format": FORMAT,
        "exported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "playbooks": [pb.__dict__ for pb in store.playbooks()],
        "lessons": store.lessons(limit=100_000),
        "tools": {
            "actions": [{k: v for k, v in t.items() if k != "latencies"} for t in tools],
            "sources": store.source_stats(tools),
        },
        "agents": [
            {k: v for k, v in r.items() if k != "gist_key"} for r in store.all_agent_records()
        ],
    }
    return _scrub(redact(document))


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return private(value)
    if isinstance(value, dict):
        return {_scrub(k): _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    return value
