"""Jinja2 rendering for the dashboard: one environment over the packaged templates,
autoescaping everything (goals, tool output and errors are data, never markup)."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from openlam.server.web.views import ago

TEMPLATES = Path(__file__).parent / "templates"
MARK = {
    "succeeded": "✓",
    "completed": "✓",
    "failed": "✗",
    "blocked": "■",
    "skipped": "-",
    "pending": "…",
    "running": "…",
    "denied": "✗",
    "approved": "✓",
    "edited": "✓",
    "expired": "⌛",
}


def _short(value: Any, limit: int = 80) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _when(ts: float | None) -> str:
    if not ts:
        return "-"
    return datetime.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def _pretty(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2, default=str)


def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(("html",), default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        short=_short, when=_when, ago=ago, pretty=_pretty, mark=lambda status: MARK.get(status, "·")
    )
    return env


ENV = environment()


def render(name: str, **context: Any) -> str:
    return ENV.get_template(name).render(**context)
