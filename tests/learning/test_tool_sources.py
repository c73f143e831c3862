"""Tool reliability per source: the calls of a real MCP server's tools (mcp-server-time),
added up per source in `openlam learn tools` and told to the planner when the server
often fails; an email address in an error is not kept."""

from __future__ import annotations

import json
from pathlib import Path

from openlam.actions.registry import load_plugins
from openlam.config import Settings
from openlam.learning.learner import Learner
from openlam.loop.perceive import AgentProfile, perceive
from openlam.loop.state import StepRecord, StepStatus
from openlam.memory.store import Store
from tests.actions.test_mcp import add_server, call, close_servers  # noqa: F401 (fixture)
from tests.learning.test_advice import outcome
from tests.learning.test_learn_cli import cli


async def test_calls_add_up_per_source_and_an_unreliable_server_is_told(
    settings: Settings, workspace: Path
) -> None:
    registry = await add_server(settings, "time", ["mcp-server-time"], trusted=True)
    steps = []
    for i, zone in enumerate(
        ["Asia/Tokyo", "Mars/Olympus", "Europe/Paris", "Moon/Base", "Venus/Cloud", "Pluto/Ice"]
    ):
        got = await call(registry, settings, "time.get_current_time", timezone=zone)
        steps.append(
            StepRecord(
                id=f"t{i}",
                action="time.get_current_time",
                args={"timezone": zone},
                status=StepStatus(got.status),
                error=got.error,
                duration_ms=5.0 + i,
            )
        )
    bad = await call(registry, settings, "time.convert_time", time="10:00")
    steps.append(
        StepRecord(
            id="c",
            action="time.convert_time",
            args={"time": "10:00"},
            status=StepStatus.failed,
            duration_ms=2.0,
            error="told ops.lead@corp.test: " + bad.error,
        )
    )
    steps.append(
        StepRecord(
            id="w",
            action="files.write",
            args={"path": "a.md", "content": "x"},
            status=StepStatus.succeeded,
            verified=True,
            duration_ms=1.0,
        )
    )
    url = settings.app_database_url
    Store(url)
    lr = Learner(url, load_plugins(settings=settings))
    assert lr.registry.get("time.convert_time").source == "mcp:time"
    lr.learn_now(outcome("run-t", "what time is it around the world", *steps), {})

    by_source = {s["source"]: s for s in lr.store.source_stats()}
    time_ = by_source["mcp:time"]
    assert (time_["actions"], time_["calls"], time_["failures"]) == (2, 7, 5)
    assert time_["p50_ms"] == 7.0  # of 2, 5, 6, 7, 8, 9, 10 ms: both tools together
    assert sum(n for e, n in time_["errors"].items() if "Invalid timezone" in e) == 4
    files = lr.registry.get("files.write").source  # a built-in plugin's own name
    assert (by_source[files]["calls"], by_source[files]["failures"]) == (1, 0)
    assert "ops.lead@" not in json.dumps(lr.store.tool_stats())  # kept to its domain
    assert "<someone>@corp.test" in json.dumps(lr.store.tool_stats())

    advice = lr.consult_now(perceive("what time is it in Lima", AgentProfile(), lr.registry)).advice
    assert any(
        a.startswith(
            "Unreliable source mcp:time (2 actions): 2 of 7 recent calls succeeded; common error: "
        )
        for a in advice
    ), advice
    assert any(a.startswith("Unreliable action time.get_current_time: 2 of 6") for a in advice)
    assert not any("time.convert_time" in a for a in advice)  # one call: too few to judge

    code, out, err = cli(workspace, "learn", "tools")
    assert code == 0, err
    assert "By action" in out and "By source" in out
    source_rows = out.split("By source", 1)[1]
    assert "mcp:time" in source_rows and "29%" in source_rows  # 2 of 7
    shown = json.loads(cli(workspace, "learn", "tools", "--json")[1])
    assert {s["source"] for s in shown["sources"]} == {files, "mcp:time"}
    assert {a["action"] for a in shown["actions"]} == {
        "files.write",
        "time.convert_time",
        "time.get_current_time",
    }
