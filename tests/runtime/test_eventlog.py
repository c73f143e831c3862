"""The event log: whoever runs a goal, anyone can follow it from the database — every
event, in order, also the last ones of a process that exits right after its run (the
writer gathers a run's events for a moment before writing them in one transaction)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from openlam.config import load_settings
from openlam.memory.engines import engine_for
from openlam.runtime.eventlog import EventLog
from tests.procs import openlam


def test_a_cli_run_leaves_its_every_event_for_followers(workspace: Path) -> None:
    done = openlam(workspace, "run", "write 'Hello from OpenLAM' to hello.md", "--json")
    out, err = done.communicate(timeout=120)
    assert done.returncode == 0, err
    run_id = json.loads(out)["run_id"]
    events = EventLog(engine_for(load_settings(workspace).app_database_url)).read(run_id)
    kinds = [data["kind"] for _, data in events]
    assert kinds[0] == "run.started" and kinds[-1] == "run.finished", kinds
    assert kinds.index("step.started") < kinds.index("step.finished")
    numbers = [n for n, _ in events]
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)


def test_events_reach_a_follower_within_moments_and_close_writes_the_rest(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path}/events.db"
    from openlam.memory.tables import metadata

    engine = engine_for(url, metadata)
    writer, follower = EventLog(engine), EventLog(engine)
    writer.record({"run_id": "r1", "kind": "run.started", "ts": time.time()})
    deadline = time.monotonic() + 10  # a correctness bound, not a performance one
    while not follower.read("r1") and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [d["kind"] for _, d in follower.read("r1")] == ["run.started"]
    for i in range(5):
        writer.record({"run_id": "r1.s1", "kind": "step.finished", "step": f"s{i}"})
    writer.close()  # no waiting: what is queued is written before close returns
    assert [d.get("step") for _, d in follower.read("r1")] == [None, "s0", "s1", "s2", "s3", "s4"]
