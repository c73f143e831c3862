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


async def test_a_slow_postgresql_round_trip_never_holds_up_the_event_loop(pg_url, tmp_path):
    """A run's checkpoints and cancellation checks go through ``db_work``: on a server
    database on a thread (a slow round trip must not stall every other run of the
    process), on SQLite right on the loop (cheaper than the hand-off; bench/README.md)."""
    import asyncio
    import threading

    from openlam.memory.engines import db_work, engine_for

    def slow_query(engine: sa.Engine) -> int:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT pg_sleep(0.3)"))
        return threading.get_ident()

    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    beat = asyncio.create_task(ticker())
    try:
        worked_on = await db_work(engine_for(pg_url), slow_query, engine_for(pg_url))
    finally:
        beat.cancel()
    assert worked_on != threading.get_ident()
    assert ticks >= 10  # the loop went on while the server took 0.3 s

    lite = engine_for(f"sqlite:///{tmp_path / 'local.db'}")
    assert await db_work(lite, threading.get_ident) == threading.get_ident()


async def test_text_holding_nul_is_stored_on_postgresql(settings, workspace, pg_url):
    """PostgreSQL's text cannot hold NUL; a goal from a webhook or a tool's error may."""
    import types

    from openlam.actions.spec import Risk, action

    plugin = types.ModuleType("binary_plugin")

    @action("binary.fetch", risk=Risk.read)
    def fetch() -> dict:
        """Fetch what a binary service answers."""
        raise ValueError("the service sent b\x00inary")

    plugin.fetch = fetch
    scripted_model("test:pg-nul", [{"steps": [{"id": "s1", "action": "binary.fetch"}]}])
    async with Workforce(
        settings=settings.with_overrides(database_url=pg_url), model="test:pg-nul"
    ) as wf:
        wf.runtime.registry.add_module(plugin, source="test")
        outcome = await wf.run("fetch the report\x00 from the binary service")
    assert outcome.status.value == "failed"  # reported as it happened, and stored
    stored = Store(pg_url).get_run(outcome.run_id)
    assert stored is not None and stored["status"] == "failed"
    assert stored["goal"] == "fetch the report\ufffd from the binary service"
    assert "the service sent b\ufffdinary" in stored["summary"]
    assert "b\ufffdinary" in stored["steps"][0]["error"]
