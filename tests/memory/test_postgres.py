"""Runs, steps, checkpoints and outcomes persist on PostgreSQL (the machine's server),
DBOS included."""

from __future__ import annotations

import sqlalchemy as sa

from openlam import Workforce
from openlam.learning.store import LearningStore
from openlam.memory.store import Store
from openlam.testing import scripted_model


async def test_durable_run_on_postgresql(settings, workspace, pg_url):
    plan = {
        "steps": [
            {"id": "s1", "action": "files.write", "args": {"path": "a.md", "content": "A"}},
            {"id": "s2", "action": "files.read", "args": {"path": "${s1.output.path}"}},
        ]
    }
    scripted_model("test:pg", [plan])
    async with Workforce(
        settings=settings.with_overrides(database_url=pg_url), model="test:pg"
    ) as wf:
        outcome = await wf.run("write and read back")
    assert outcome.status.value == "completed"
    assert not (workspace / ".openlam" / "openlam.db").exists()  # nothing went to SQLite

    store = Store(pg_url)
    stored = store.get_run(outcome.run_id[:10])  # a unique prefix is enough
    assert stored is not None
    assert stored["status"] == "completed"
    assert [(s["step_id"], s["status"]) for s in stored["steps"]] == [
        ("s1", "succeeded"),
        ("s2", "succeeded"),
    ]
    assert stored["steps"][1]["output"]["text"] == "A"
    assert stored["outcome"]["usage"]["model_requests"] == 1
    with store.engine.connect() as conn:  # the run's journal and DBOS's record are there
        keys = (
            conn.execute(
                sa.text("SELECT key FROM checkpoints WHERE run_id = :w AND state = 'done'"),
                {"w": outcome.run_id},
            )
            .scalars()
            .all()
        )
        status = conn.execute(
            sa.text("SELECT status FROM dbos.workflow_status WHERE workflow_uuid = :w"),
            {"w": outcome.run_id},
        ).scalar()
    assert {"model:1", "step:s1", "step:s2"} <= set(keys)  # (and the playbook lookup)
    assert status == "SUCCESS"
    store.close()

    # what learning counted at the end, in one transaction on PostgreSQL too
    learned = LearningStore(pg_url)
    stats = {t["action"]: (t["calls"], t["failures"]) for t in learned.tool_stats()}
    assert stats == {"files.write": (1, 0), "files.read": (1, 0)}
    assert sum(learned.agent_records("write and read back").get(outcome.agent, (0, 0))) == 1
