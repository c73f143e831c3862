"""Queues: where submitted goals wait for a worker, with limits from openlam.toml.

DBOS queues are the distributed engine: any number of ``openlam worker`` processes on
any number of machines dequeue from them (PostgreSQL), or one machine's workers
(SQLite). A run goes to the narrowest queue configured for it — its agent's, else its
department's, else the default queue::

    [queues]                        # the default queue, "openlam"
    concurrency = 20                # runs at once across every worker
    worker_concurrency = 4          # runs at once in one worker process
    rate = "60/1m"                  # at most 60 runs started per minute
    [queues.department.finance]     # queue "openlam.department.finance"
    concurrency = 2
    [queues.agent.cfo]              # queue "openlam.agent.cfo"
    concurrency = 1

Priorities: ``openlam submit --priority N`` (1 is the most urgent; unprioritised runs
come after prioritised ones, as DBOS orders them).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from openlam.errors import UserError

DEFAULT = "openlam"
LIMIT_KEYS = ("concurrency", "worker_concurrency", "rate")


@dataclass(frozen=True)
class QueueConfig:
    name: str
    concurrency: int | None = None
    worker_concurrency: int | None = None
    rate: tuple[int, float] | None = None  # (runs, seconds)

    def register_with(
        self, dbos: Any, worker_concurrency: int | None = None, *, update: bool = True
    ) -> None:
        """Create the queue in DBOS through ``dbos`` (the launched DBOS class, or a
        ``DBOSClient``); ``update`` also overwrites an existing queue's limits. DBOS keeps
        a queue's limits in the system database, shared by every process: only a process
        that takes work from it (a worker) should set them."""
        limiter: Any = {"limit": self.rate[0], "period": self.rate[1]} if self.rate else None
        dbos.register_queue(
            self.name,
            global_concurrency=self.concurrency,
            worker_concurrency=worker_concurrency or self.worker_concurrency,
            limiter=limiter,
            polling_interval_sec=POLL_SECONDS,
            on_conflict="always_update" if update else "never_update",
        )


POLL_SECONDS = 0.05  # how often an idle worker looks for new runs (pick-up latency)


def configured(settings: Any) -> list[QueueConfig]:
    """Every queue openlam.toml defines, the default first."""
    section = (getattr(settings, "raw", {}) or {}).get("queues", {})
    if not isinstance(section, Mapping):
        raise UserError(
            "[queues] in openlam.toml must be a table",
            "see docs/operations.md for the queue settings",
        )
    queues = [_parse(DEFAULT, {k: v for k, v in section.items() if k in LIMIT_KEYS}, "[queues]")]
    unknown = set(section) - {*LIMIT_KEYS, "department", "agent"}
    if unknown:
        raise UserError(
            f"[queues] has unknown keys: {', '.join(sorted(unknown))}",
            f"use {', '.join(LIMIT_KEYS)} and the tables department.NAME, agent.ID",
        )
    for scope in ("department", "agent"):
        table = section.get(scope, {})
        if not isinstance(table, Mapping):
            raise UserError(f"[queues.{scope}] must be a table of tables")
        for key, limits in table.items():
            queues.append(_parse(f"{DEFAULT}.{scope}.{key}", limits, f"[queues.{scope}.{key}]"))
    return queues


def queue_for(settings: Any, agent: str, department: str) -> str:
    names = {q.name for q in configured(settings)}
    for name in (f"{DEFAULT}.agent.{agent}", f"{DEFAULT}.department.{department}"):
        if name in names:
            return name
    return DEFAULT


def _parse(name: str, raw: Any, where: str) -> QueueConfig:
    from openlam.governance.budget import parse_rate

    if not isinstance(raw, Mapping):
        raise UserError(f"{where} must be a table", f"keys: {', '.join(LIMIT_KEYS)}")
    unknown = set(raw) - set(LIMIT_KEYS)
    if unknown:
        raise UserError(
            f"{where} has unknown keys: {', '.join(sorted(unknown))}",
            f"use {', '.join(LIMIT_KEYS)}",
        )
    counts = {}
    for key in ("concurrency", "worker_concurrency"):
        value = raw.get(key)
        if value is not None and (
            not isinstance(value, int) or isinstance(value, bool) or value < 1
        ):
            raise UserError(f"{where} {key} must be a whole number ≥ 1 (got {value!r})")
        counts[key] = value
    rate = parse_rate(raw["rate"], f"{where} rate") if "rate" in raw else None
    return QueueConfig(name, counts["concurrency"], counts["worker_concurrency"], rate)
