"""A 6 MB tool result is used whole by the run but not copied into every database row:
on SQLite the journal keeps it in a file under .openlam/outputs/, the runs and steps
tables keep a preview. On PostgreSQL the journal keeps it in its row: the run may resume
on another machine, whose workspace folder is not this one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from openlam import Workforce
from openlam.actions.spec import Risk, action
from openlam.config import Settings, load_settings
from openlam.loop.state import Outcome
from openlam.memory.tables import checkpoints, steps
from openlam.testing import scripted_model

BIG = "0123456789abcdef" * (6 * 1024 * 1024 // 16)


@action("big.produce", risk=Risk.read, idempotent=True)
def produce() -> dict:
    """Produce a very large text."""
    return {"text": BIG}


async def test_a_six_megabyte_result_is_stored_once(workspace: Path) -> None:
    outcome, journaled = await run_big(workspace, load_settings(workspace))
    assert len(json.dumps(journaled)) < 1_000
    files = list((workspace / ".openlam" / "outputs").rglob("*.json"))
    assert len(files) == 1 and BIG in files[0].read_text()
    assert journaled["$file"] == f"{outcome.run_id}/step_s1.json"  # relative: movable
    dbos = (workspace / ".openlam" / "dbos.sqlite").stat().st_size
    assert dbos < 2_000_000  # the workflow's stored result carries the preview only


async def test_on_postgresql_the_result_stays_in_the_database(workspace: Path, pg_url) -> None:
    settings = load_settings(workspace).with_overrides(database_url=pg_url)
    _outcome, journaled = await run_big(workspace, settings)
    assert journaled["output"] == {"text": BIG} and "$file" not in journaled
    assert not (workspace / ".openlam" / "outputs").exists()


async def run_big(workspace: Path, settings: Settings) -> tuple[Outcome, Any]:
    """Run a plan whose first step returns 6 MB that the second writes to big.txt; the
    outcome and the first step's journal row (its runs/steps row holds a preview)."""
    plan = {
        "steps": [
            {"id": "s1", "action": "big.produce", "args": {}},
            {
                "id": "s2",
                "action": "files.write",
                "args": {"path": "big.txt", "content": "${s1.output.text}"},
            },
        ]
    }
    model = f"test:big-{settings.app_database_url.rsplit('/', 1)[-1]}"
    scripted_model(model, [plan])
    async with Workforce(settings=settings, model=model) as wf:
        wf.runtime.registry.add(produce.__openlam_action__)
        outcome = await wf.run("copy the big text", agent={"id": "operator", "actions": ["*"]})
        engine = wf.runtime.store.engine
        with engine.connect() as conn:
            stored = conn.execute(
                sa.select(steps.c.output).where(
                    steps.c.run_id == outcome.run_id, steps.c.step_id == "s1"
                )
            ).scalar()
            journaled = conn.execute(
                sa.select(checkpoints.c.result).where(
                    checkpoints.c.run_id == outcome.run_id, checkpoints.c.key == "step:s1"
                )
            ).scalar()
    assert outcome.status.value == "completed", outcome.summary
    assert (workspace / "big.txt").read_text() == BIG  # the reference got all of it
    assert len(json.dumps(stored)) < 10_000 and stored["truncated"]
    return outcome, journaled
