"""Learning from experience: playbooks replayed without a model,
advice for the planner (lessons from people, unreliable actions, similar plans), and
tool reliability. See docs/learning.md.

    literals   the values in a goal that change from one goal of a shape to the next
    playbooks  generalising a plan into a playbook, matching and filling it
    store      the learn_* tables in the project database
    learner    the two hooks the loop calls: consult (before planning) and learn
"""

from __future__ import annotations

from typing import Any

from openlam.errors import UserError


def enabled(settings: Any) -> bool:
    """``[learning] enabled`` in openlam.toml (default true)."""
    section = (getattr(settings, "raw", {}) or {}).get("learning", {})
    if not isinstance(section, dict):
        raise UserError(
            "[learning] in openlam.toml must be a table", "e.g. [learning]\nenabled = false"
        )
    value = section.get("enabled", True)
    if not isinstance(value, bool):
        raise UserError(
            f"[learning] enabled must be true or false (got {value!r})",
            "write enabled = false (no quotes) to turn learning off",
        )
    return value
