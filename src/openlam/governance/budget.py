"""Budgets and rate limits: model requests, tokens, estimated cost, actions.

Usage is written to ``gov_usage`` (one row per model-usage delta or action), so budgets
hold across processes and workers. Limits, in openlam.toml::

    [governance.budgets.run]            # one run, over its whole life
    model_requests = 20
    tokens = 200000
    cost = 2.0                          # estimated, in the currency of [governance.prices]
    actions = 50
    [governance.budgets.agent."*"]      # each agent, per UTC day ("*" = every agent)
    tokens = 1000000
    [governance.budgets.department.finance]   # a department, per UTC day
    cost = 10
    [governance.budgets.day]            # the whole workforce, per UTC day
    cost = 50
    [governance.prices]                 # per million tokens, by model glob; default 0
    "openai:gpt-4o*" = { input = 2.5, output = 10 }
    [governance.rate_limits]            # per action, by glob: COUNT/PERIOD
    "email.send" = "10/1h"

A run budget binds the run's whole delegation tree: a child's run id is its parent's id
followed by ``.step`` (``org/delegation.py``), so the tree of ``R`` is ``R`` and every id
starting with ``R.``. Each run records only its own usage; a parent's usage counters,
which include its children's for reporting, are synced against the tree's recorded
usage, so a child is never counted twice.

Model usage is already spent when it is seen, so a model budget blocks the *next*
action once usage is over the limit; an action budget blocks the action that would go
over it. The block names the budget (``budget run.tokens exceeded: …``).
"""

from __future__ import annotations

import fnmatch
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError

from openlam.errors import UserError
from openlam.governance.db import engine_for
from openlam.governance.db import usage as table
from openlam.governance.policy import parse_duration

_INSERT = insert(table)

METRICS = ("model_requests", "tokens", "cost", "actions")


@dataclass(frozen=True)
class Limits:
    model_requests: int | None = None
    tokens: int | None = None
    cost: float | None = None
    actions: int | None = None

    @classmethod
    def parse(cls, raw: Any, where: str) -> Limits:
        if not isinstance(raw, Mapping):
            raise UserError(f"{where} must be a table of limits", f"use {', '.join(METRICS)}")
        unknown = set(raw) - set(METRICS)
        if unknown:
            raise UserError(
                f"{where}: unknown budget {', '.join(sorted(unknown))}",
                f"budgets are {', '.join(METRICS)}",
            )
        for key, value in raw.items():
            if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
                raise UserError(f"{where}.{key} must be a number ≥ 0, got {value!r}")
        return cls(**raw)

    def __bool__(self) -> bool:
        return any(getattr(self, f.name) is not None for f in fields(self))


@dataclass
class BudgetConfig:
    run: Limits = field(default_factory=Limits)
    agent: dict[str, Limits] = field(default_factory=dict)
    department: dict[str, Limits] = field(default_factory=dict)
    day: Limits = field(default_factory=Limits)
    prices: dict[str, tuple[float, float]] = field(default_factory=dict)
    rate_limits: dict[str, tuple[int, float]] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Any) -> BudgetConfig:
        section = (getattr(settings, "raw", {}) or {}).get("governance", {})
        budgets = section.get("budgets", {})
        where = "[governance.budgets"
        if not isinstance(budgets, dict) or not all(
            isinstance(budgets.get(k, {}), dict) for k in ("agent", "department")
        ):
            raise UserError(
                "[governance.budgets] in openlam.toml must be tables: run, day, agent.ID, "
                f"department.NAME (got {budgets!r})",
                "e.g. [governance.budgets.run] then model_requests = 50 (docs/governance.md)",
            )
        config = cls(
            run=Limits.parse(budgets.get("run", {}), f"{where}.run]"),
            agent={
                k: Limits.parse(v, f"{where}.agent.{k}]")
                for k, v in budgets.get("agent", {}).items()
            },
            department={
                k: Limits.parse(v, f"{where}.department.{k}]")
                for k, v in budgets.get("department", {}).items()
            },
            day=Limits.parse(budgets.get("day", {}), f"{where}.day]"),
        )
        for glob, price in section.get("prices", {}).items():
            if not isinstance(price, Mapping):
                raise UserError(f"[governance.prices] {glob} must be {{input = N, output = N}}")
            config.prices[glob] = (float(price.get("input", 0)), float(price.get("output", 0)))
        for glob, rate in section.get("rate_limits", {}).items():
            config.rate_limits[glob] = parse_rate(rate, glob)
        return config

    def limits_anything(self) -> bool:
        """Whether any budget or rate limit is set. Without one nothing needs counting
        step by step: a run's usage is recorded once, when it ends."""
        return any(bool(getattr(self, f.name)) for f in fields(self) if f.name != "prices")


def parse_rate(text: Any, name: str = "rate") -> tuple[int, float]:
    """``"10/1h"``, ``"10/h"``, ``"3/30s"`` → (count, seconds)."""
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d*(?:\.\d+)?)\s*([smhd])\s*", str(text))
    seconds = parse_duration(f"{m.group(2) or 1}{m.group(3)}") if m else None
    if m is None or seconds is None:
        raise UserError(
            f"rate limit {name}: {text!r} is not COUNT/PERIOD", 'e.g. "10/1h", "100/d", "3/30s"'
        )
    return int(m.group(1)), seconds


class Budgets:
    def __init__(
        self, url: str, config: BudgetConfig | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        self.engine = engine_for(url)
        self.config = config or BudgetConfig()
        self.clock = clock

    def limits(self, metric: str) -> bool:
        """Whether any budget limits ``metric``."""
        scopes = [
            self.config.run,
            self.config.day,
            *self.config.agent.values(),
            *self.config.department.values(),
        ]
        return any(getattr(limits, metric) is not None for limits in scopes)

    def _day(self) -> str:
        return datetime.fromtimestamp(self.clock(), UTC).strftime("%Y-%m-%d")

    def price(self, model: str, input_tokens: float, output_tokens: float) -> float:
        for glob, (p_in, p_out) in self.config.prices.items():
            if fnmatch.fnmatchcase(model, glob):
                return (input_tokens * p_in + output_tokens * p_out) / 1_000_000
        return 0.0

    def _insert(self, row: dict[str, Any]) -> None:
        row = {"ts": self.clock(), "day": self._day(), **row}
        try:
            with self.engine.begin() as conn:
                conn.execute(_INSERT, row)  # built once; the row's keys name the columns
        except IntegrityError:
            pass  # this key was recorded already (a replayed step)

    def sync_model_usage(
        self,
        run_id: str,
        agent: str,
        department: str,
        model: str,
        model_requests: int,
        input_tokens: int,
        output_tokens: int,
    ) -> None:
        """Record what the run has used beyond what is already recorded for it (the
        run's usage counters are cumulative, so this is idempotent)."""
        seen = self.totals(tree=run_id)  # the run's counters include its children's
        delta = (
            model_requests - seen["model_requests"],
            input_tokens - seen["input_tokens"],
            output_tokens - seen["output_tokens"],
        )
        if not any(d > 0 for d in delta):
            return
        dr, di, do = (max(d, 0) for d in delta)
        self._insert(
            {
                "run_id": run_id,
                "agent": agent,
                "department": department,
                "model_requests": dr,
                "input_tokens": di,
                "output_tokens": do,
                "cost": self.price(model, di, do),
                "actions": 0,
            }
        )

    def record_model_call(
        self,
        run_id: str,
        agent: str,
        department: str,
        model: str,
        input_tokens: int,
        output_tokens: int,
        key: str,
    ) -> None:
        self._insert(
            {
                "run_id": run_id,
                "agent": agent,
                "department": department,
                "model_requests": 1,
                "input_tokens": input_tokens,
                "output_tokens": output_tokens,
                "cost": self.price(model, input_tokens, output_tokens),
                "actions": 0,
                "key": key,
            }
        )

    def record_model_tokens(
        self,
        run_id: str,
        agent: str,
        department: str,
        model: str,
        input_tokens: int,
        output_tokens: int,
        key: str,
    ) -> None:
        """The tokens of a model request already counted under ``key``."""
        if input_tokens or output_tokens:
            self._insert(
                {
                    "run_id": run_id,
                    "agent": agent,
                    "department": department,
                    "model_requests": 0,
                    "input_tokens": input_tokens,
                    "output_tokens": output_tokens,
                    "actions": 0,
                    "cost": self.price(model, input_tokens, output_tokens),
                    "key": f"{key}:tokens",
                }
            )

    def record_run_usage(
        self,
        run_id: str,
        agent: str,
        department: str,
        model: str,
        model_requests: int,
        input_tokens: int,
        output_tokens: int,
        actions: int,
        delegated: bool = True,
    ) -> None:
        """A whole run's usage in one row, once (keyed by the run): for a run none of
        whose usage was recorded step by step. A parent's counters include its children's,
        which recorded their own rows already: only the rest is the parent's
        (``delegated=False``: the run had no children, nothing to subtract)."""
        seen: dict[str, Any] = (
            self.totals(tree=run_id)
            if delegated
            else dict.fromkeys(("model_requests", "input_tokens", "output_tokens"), 0)
        )
        requests, tokens_in, tokens_out = (
            max(0, int(mine - seen[name]))
            for mine, name in (
                (model_requests, "model_requests"),
                (input_tokens, "input_tokens"),
                (output_tokens, "output_tokens"),
            )
        )
        self._insert(
            {
                "run_id": run_id,
                "agent": agent,
                "department": department,
                "model_requests": requests,
                "input_tokens": tokens_in,
                "output_tokens": tokens_out,
                "cost": self.price(model, tokens_in, tokens_out),
                "actions": actions,
                "key": f"{run_id}:usage",
            }
        )

    def recorded(self, key: str) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(select(table.c.id).where(table.c.key == key)).first() is not None

    def record_action(
        self,
        run_id: str,
        agent: str,
        department: str,
        action: str,
        key: str | None = None,
        count: int = 1,
    ) -> None:
        self._insert(
            {
                "run_id": run_id,
                "agent": agent,
                "department": department,
                "action": action,
                "actions": count,
                "key": key,
            }
        )

    def totals(
        self,
        *,
        run_id: str | None = None,
        agent: str | None = None,
        department: str | None = None,
        day: str | None = None,
        tree: str | None = None,
    ) -> dict[str, float]:
        """Usage summed over rows matching every filter given; ``tree``: the run of that
        id and all its descendants."""
        cols = [
            func.coalesce(func.sum(getattr(table.c, c)), 0).label(c)
            for c in ("model_requests", "input_tokens", "output_tokens", "cost", "actions")
        ]
        query = select(*cols)
        if tree is not None:  # "R" or ids in ["R.", "R/"): "/" follows "." — an index range
            run = table.c.run_id
            query = query.where((run == tree) | ((run >= f"{tree}.") & (run < f"{tree}/")))
        for column, value in (
            ("run_id", run_id),
            ("agent", agent),
            ("department", department),
            ("day", day),
        ):
            if value is not None:
                query = query.where(getattr(table.c, column) == value)
        with self.engine.connect() as conn:
            row = conn.execute(query).one()
        out = dict(row._mapping)
        out["tokens"] = out["input_tokens"] + out["output_tokens"]
        return out

    def exceeded(
        self,
        run_id: str,
        agent: str,
        department: str,
        *,
        adding_action: bool = True,
        adding_model_request: bool = False,
        root_id: str | None = None,
    ) -> str | None:
        """The first budget this run is over, or would go over with one more action (or
        model request). The run budget counts the delegation tree under ``root_id``."""
        day = self._day()
        scopes: list[tuple[str, Limits, dict[str, Any]]] = [
            ("run", self.config.run, {"tree": root_id or run_id})
        ]
        agent_limits = self.config.agent.get(agent) or self.config.agent.get("*")
        if agent_limits:
            scopes.append((f"agent[{agent}] per day", agent_limits, {"agent": agent, "day": day}))
        dept_limits = self.config.department.get(department) or (
            self.config.department.get("*") if department else None
        )
        if dept_limits:
            scopes.append(
                (
                    f"department[{department}] per day",
                    dept_limits,
                    {"department": department, "day": day},
                )
            )
        if self.config.day:
            scopes.append(("day", self.config.day, {"day": day}))
        for name, limits, where in scopes:
            if not limits:
                continue
            used = self.totals(**where)
            for metric in METRICS:
                limit = getattr(limits, metric)
                if limit is None:
                    continue
                adding = (metric == "actions" and adding_action) or (
                    metric == "model_requests" and adding_model_request
                )
                if used[metric] + adding > limit:
                    shown = f"{used[metric]:.4g}" if metric == "cost" else str(int(used[metric]))
                    return (
                        f"budget {name.split(' ')[0]}.{metric} exceeded: {shown} used"
                        f"{' (+1 now)' if adding else ''}, limit "
                        f"{limit:g}{' per day' if 'per day' in name or name == 'day' else ''}"
                    )
        return None

    def rate_limited(self, action: str) -> str | None:
        for glob, (count, seconds) in self.config.rate_limits.items():
            if not fnmatch.fnmatchcase(action, glob):
                continue
            since = self.clock() - seconds
            with self.engine.connect() as conn:
                used = conn.execute(
                    select(func.coalesce(func.sum(table.c.actions), 0)).where(
                        table.c.action == action, table.c.ts > since
                    )
                ).scalar()
            if (used or 0) + 1 > count:
                return (
                    f"rate limit {glob} reached: {used} calls of {action} in the last "
                    f"{seconds:g}s, limit {count}"
                )
        return None
