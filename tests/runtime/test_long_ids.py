"""Ids as long as validation allows fit the database: a two-level delegation with
24-character step ids on PostgreSQL (its run ids are ~70 characters)."""

from __future__ import annotations

from pathlib import Path

import pytest

from openlam import Workforce
from openlam.config import load_settings
from openlam.testing import scripted_model

LONG = "x" * 24


def org(chat: list[dict[str, str]]) -> dict:
    system = chat[0]["content"]
    me = system[: system.find(")") + 1]  # "You are NAME, TITLE (DEPARTMENT)"
    if "(Data and Analytics)" in me:
        if "Head of Data" in me:
            return {
                "steps": [
                    {
                        "id": f"a{LONG[1:]}",
                        "action": "delegate",
                        "args": {"agent": "analytics_lead", "goal": "size the market"},
                    }
                ]
            }
        if "Analytics Lead" in me:
            return {
                "steps": [
                    {
                        "id": f"b{LONG[1:]}",
                        "action": "delegate",
                        "args": {"agent": "data_analyst", "goal": "count customers"},
                    }
                ]
            }
    return {
        "steps": [
            {
                "id": f"c{LONG[1:]}",
                "action": "files.write",
                "args": {"path": "count.txt", "content": "42"},
            }
        ]
    }


@pytest.mark.timeout(120)
async def test_two_level_delegation_with_long_step_ids_on_postgresql(
    workspace: Path, pg_url: str
) -> None:
    scripted_model("test:long-ids", org)
    settings = load_settings(workspace).with_overrides(database_url=pg_url)
    async with Workforce(settings=settings, model="test:long-ids") as wf:
        outcome = await wf.run("size the market", agent="head_of_data")
        stored = wf.runtime.store.get_run(outcome.run_id)
    assert outcome.status.value == "completed", outcome.summary
    grandchild = f"{outcome.run_id}.a{LONG[1:]}.b{LONG[1:]}"
    assert len(grandchild) > 64
    assert stored is not None and stored["status"] == "completed"
    assert (workspace / "count.txt").read_text() == "42"
    assert outcome.children == [f"{outcome.run_id}.a{LONG[1:]}"]


def test_a_step_id_longer_than_24_characters_is_refused() -> None:
    from openlam.actions.registry import load_plugins
    from openlam.loop.state import Plan
    from openlam.loop.validate import validate_plan

    plan = Plan.model_validate(
        {"steps": [{"id": "y" * 25, "action": "files.read", "args": {"path": "a"}}]}
    )
    errors = validate_plan(plan, load_plugins())
    assert any("at most 24 characters" in e for e in errors)
