"""notes: the notes board a delegation tree shares (a parent, its children, theirs).

Kept as one JSON-lines file per tree in the workspace's state directory, next to the
files the tree shares. Every agent may use it: the board is how collaborators talk.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import NotRequired

from typing_extensions import TypedDict

from openlam.actions.spec import ActionContext, Risk, action
from openlam.actions.workspace import file_name

MAX_NOTE = 4000


class Posted(TypedDict):
    board: str
    count: int


class Note(TypedDict):
    run_id: str
    step: str
    text: str
    at: float
    tainted: NotRequired[bool]  # posted by a step that derives from untrusted content


class Board(TypedDict):
    board: str
    notes: list[Note]


def board_path(workspace: Path, root_id: str) -> Path:
    # a run id is the caller's choice (Workforce.run(run_id=...)): "../x" stays a name
    return workspace / ".openlam" / "notes" / f"{file_name(root_id)}.jsonl"


def read_board(workspace: Path, root_id: str) -> list[Note]:
    path = board_path(workspace, root_id)
    if not path.exists():
        return []
    notes: list[Note] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            notes.append(json.loads(line))
        except ValueError:  # a torn last line from a crash is skipped, not fatal
            continue
    return notes


def _root(ctx: ActionContext) -> str:
    return str(ctx.extras.get("root_id") or ctx.run_id)


@action("notes.post", risk=Risk.write, idempotent=True)
def post(ctx: ActionContext, text: str) -> Posted:
    """Post a note to the board shared with the runs that delegated to you and yours.

    A step posts one note: run again (a retry, a recovery), it finds its note there.

    Args:
        text: The note (findings, decisions, where a file is).
    """
    path = board_path(ctx.workspace, _root(ctx))
    path.parent.mkdir(parents=True, exist_ok=True)
    notes = read_board(ctx.workspace, _root(ctx))
    if not any(n.get("run_id") == ctx.run_id and n.get("step") == ctx.step_id for n in notes):
        note = {
            "run_id": ctx.run_id,
            "step": ctx.step_id,
            "text": text[:MAX_NOTE],
            "at": time.time(),
            "tainted": bool(ctx.extras.get("tainted")),
        }
        with path.open("a", encoding="utf-8") as handle:  # one append per note: atomic enough
            handle.write(json.dumps(note, ensure_ascii=False) + "\n")
        notes.append(note)  # type: ignore[arg-type]
    return {"board": path.name, "count": len(notes)}


@action("notes.read", risk=Risk.read, idempotent=True)
def read(ctx: ActionContext) -> Board:
    """Read every note on the shared board, oldest first."""
    root = _root(ctx)
    return {"board": root, "notes": read_board(ctx.workspace, root)}
