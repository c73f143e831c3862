# ruff: noqa: RUF002, RUF003 (σ, −: the mathematics is written as it is printed)
"""A workspace's federation membership and its record of what it shared, as files in
``.openlam/federated/`` (plain JSON, readable without OpenLAM):

* ``membership.json`` — the server, ε and δ per round, the clipping norm, the total ε
  budget; written by ``openlam federate join``, removed by ``leave``;
* ``shared.jsonl`` — one line per round taken part in: when, the server, (ε, δ), σ,
  the clipping norm, the vocabulary and the exact vector that left the workspace (after
  clipping and noise), so a person can audit it;
* ``community.json`` — the last aggregate received back, as success rates.

Files rather than tables: nothing here is queried per run, and a person reviewing what
left the workspace should be able to read it with any text editor.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from openlam.learning.federated.privacy import check, composed

DEFAULT_EPSILON = 1.0
DEFAULT_DELTA = 1e-6
DEFAULT_CLIP = 5000.0
DEFAULT_BUDGET = 10.0


@dataclass
class Membership:
    server: str
    epsilon: float = DEFAULT_EPSILON
    delta: float = DEFAULT_DELTA
    clip: float = DEFAULT_CLIP
    budget: float = DEFAULT_BUDGET  # total ε this workspace will ever spend
    joined_at: float = 0.0


def folder(workspace: Path) -> Path:
    from openlam.config import STATE_DIR

    return Path(workspace) / STATE_DIR / "federated"


def validate(m: Membership) -> None:
    from openlam.errors import UserError

    check(m.epsilon, m.delta)
    if not (m.clip > 0 and m.clip < float("inf")):
        raise UserError(
            f"clip must be a positive number, got {m.clip:g}",
            "the clipping norm bounds how much one workspace weighs in the aggregate; "
            f"the default is {DEFAULT_CLIP:g}",
        )
    if not (m.budget >= m.epsilon and m.budget < float("inf")):
        raise UserError(
            f"the budget (ε {m.budget:g} in all) is less than one round's ε ({m.epsilon:g})",
            "give --budget at least --epsilon",
        )


def save(workspace: Path, m: Membership) -> None:
    validate(m)
    d = folder(workspace)
    d.mkdir(parents=True, exist_ok=True)
    _write(d / "membership.json", json.dumps(asdict(m), indent=2) + "\n")


def load(workspace: Path) -> Membership | None:
    path = folder(workspace) / "membership.json"
    if not path.exists():
        return None
    from openlam.errors import UserError

    try:
        return Membership(**json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, TypeError) as exc:
        raise UserError(
            f"{path} is not a membership file OpenLAM can read ({exc})",
            "join again with `openlam federate join SERVER`, or delete the file",
        ) from None


def leave(workspace: Path) -> bool:
    """Forget the membership and the last aggregate. The record of what was shared is
    kept: it is this workspace's own audit trail (and ε already spent stays spent)."""
    d = folder(workspace)
    found = (d / "membership.json").exists()
    for name in ("membership.json", "community.json"):
        (d / name).unlink(missing_ok=True)
    return found


def rounds(workspace: Path) -> list[dict[str, Any]]:
    path = folder(workspace) / "shared.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def spent(workspace: Path) -> tuple[float, float]:
    """(ε, δ) spent by every round this workspace took part in, whatever the server."""
    return composed([(r["epsilon"], r["delta"]) for r in rounds(workspace)])


def record_round(workspace: Path, entry: dict[str, Any]) -> None:
    d = folder(workspace)
    d.mkdir(parents=True, exist_ok=True)
    with (d / "shared.jsonl").open("a", encoding="utf-8") as f:
        f.write(json.dumps({"at": time.time(), **entry}) + "\n")


def save_community(workspace: Path, priors: dict[str, Any]) -> None:
    d = folder(workspace)
    d.mkdir(parents=True, exist_ok=True)
    _write(d / "community.json", json.dumps({"at": time.time(), **priors}, indent=2) + "\n")


def community(workspace: Path) -> dict[str, Any] | None:
    path = folder(workspace) / "community.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def _write(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
