"""Capability gaps: what the workforce was asked to do and could not, most requested first.

Every ``request_capability`` step and every step that named an action no source
provides ends a run with a :class:`~openlam.loop.state.Gap` of kind ``capability``;
:meth:`GapStore.record_outcome` (a learn hook) stores each one in ``gov_gaps``, counting
repeats of the same need, with the goal that needed it. Each gap carries a suggestion of
the kind of source that could fill it:

* **MCP server** — a general tool surface MCP servers commonly provide (files, git,
  databases, browsers, fetch, chat and calendar apps, …);
* **OpenAPI service** — a REST/web service or SaaS API (an OpenAPI spec turns each of its
  operations into an action);
* **plugin** — anything else: custom Python code registered under ``openlam.plugins``.

The suggestion is a keyword heuristic and says so; it is where to look first, not a
promise that such a source exists.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select, update

from openlam.governance.db import engine_for
from openlam.governance.db import gaps as table
from openlam.loop.state import GapKind, Outcome

MCP, OPENAPI, PLUGIN = "MCP server", "OpenAPI service", "plugin"
_MCP_WORDS = (
    "file",
    "filesystem",
    "directory",
    "git",
    "github",
    "gitlab",
    "database",
    "sql",
    "postgres",
    "sqlite",
    "browser",
    "screenshot",
    "fetch",
    "web page",
    "slack",
    "calendar",
    "drive",
    "memory",
    "time",
    "timezone",
    "shell",
    "terminal",
    "docker",
    "kubernetes",
    "maps",
    "notion",
    "jira",
    "linear",
    "sentry",
)
_OPENAPI_WORDS = (
    "api",
    "rest",
    "http",
    "endpoint",
    "webhook",
    "service",
    "saas",
    "crm",
    "stripe",
    "payment",
    "invoice",
    "billing",
    "erp",
    "hubspot",
    "salesforce",
    "shopify",
    "zendesk",
    "twilio",
    "sms",
    "weather",
    "exchange rate",
)


def suggest_source(what: str, why: str = "") -> str:
    text = f"{what} {why}".lower()

    def has(words: tuple[str, ...]) -> bool:
        return any(re.search(rf"\b{re.escape(w)}", text) for w in words)

    if has(_OPENAPI_WORDS):
        return OPENAPI
    if has(_MCP_WORDS):
        return MCP
    return PLUGIN


def gap_key(what: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", what.lower()).strip()[:300] or "?"


@dataclass
class StoredGap:
    what: str
    why: str
    goal: str
    kind: str
    source: str
    count: int
    first_seen: float
    last_seen: float
    last_run: str


class GapStore:
    def __init__(self, url: str, clock: Callable[[], float] = time.time) -> None:
        self.engine = engine_for(url)
        self.clock = clock

    def record(
        self,
        what: str,
        why: str,
        *,
        goal: str = "",
        run_id: str = "",
        kind: str = GapKind.capability.value,
    ) -> StoredGap:
        key, now = gap_key(what), self.clock()
        with self.engine.begin() as conn:
            row = conn.execute(select(table).where(table.c.key == key)).first()
            if row is None:
                conn.execute(
                    insert(table).values(
                        key=key,
                        what=what,
                        why=why,
                        goal=goal,
                        kind=kind,
                        source=suggest_source(what, why),
                        count=1,
                        first_seen=now,
                        last_seen=now,
                        last_run=run_id,
                    )
                )
            else:
                conn.execute(
                    update(table)
                    .where(table.c.key == key)
                    .values(
                        count=table.c.count + 1,
                        why=why or row.why,
                        goal=goal or row.goal,
                        last_seen=now,
                        last_run=run_id,
                    )
                )
            stored = conn.execute(select(table).where(table.c.key == key)).one()
        return _gap(stored._mapping)

    def record_outcome(self, outcome: Outcome, _experience: Any = None) -> int:
        """Store the capability gaps of a finished run; the learn-hook signature."""
        n = 0
        for gap in outcome.gaps:
            if gap.kind is GapKind.capability:
                self.record(gap.what, gap.why, goal=outcome.goal, run_id=outcome.run_id)
                n += 1
        return n

    def list(self, limit: int | None = None) -> list[StoredGap]:
        query = select(table).order_by(table.c.count.desc(), table.c.last_seen.desc())
        if limit:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            return [_gap(r._mapping) for r in conn.execute(query)]


def _gap(row: Any) -> StoredGap:
    data = dict(row)
    data.pop("key", None)
    return StoredGap(**data)
