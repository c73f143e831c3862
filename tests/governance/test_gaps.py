"""Capability gaps: stored from runs, counted, listed most requested first."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from openlam.governance.gaps import MCP, OPENAPI, PLUGIN, suggest_source
from tests.governance.conftest import Harness

ASK_SMS = {
    "steps": [
        {
            "id": "s1",
            "action": "request_capability",
            "args": {
                "capability": "SMS sending API",
                "reason": "the goal asks to text the customer",
            },
        }
    ]
}
UNKNOWN = {"steps": [{"id": "s1", "action": "git.commit", "args": {"message": "x"}}]}


async def test_gaps_from_runs_are_counted_and_ranked(harness: Harness) -> None:
    gov = harness.governance()
    for goal in ("text Ann", "text Bob"):
        outcome = await harness.run(gov, [ASK_SMS], goal=goal)
        assert outcome.status.value == "blocked"
        await gov.learn_hook(outcome, {})
    # an unknown action stays unknown after the repairs: a capability gap too
    outcome = await harness.run(gov, [UNKNOWN] * 3, goal="commit the change")
    assert any(g.what == "git.commit" for g in outcome.gaps)
    await gov.learn_hook(outcome, {})
    gaps = gov.gaps.list()
    assert [(g.what, g.count) for g in gaps] == [("SMS sending API", 2), ("git.commit", 1)]
    assert gaps[0].goal == "text Bob" and gaps[0].source == OPENAPI
    assert gaps[1].source == MCP
    assert "the goal asks to text the customer" in gaps[0].why


def test_source_suggestions() -> None:
    assert suggest_source("Stripe refunds") == OPENAPI
    assert suggest_source("read a PostgreSQL database") == MCP
    assert suggest_source("translate a poem into Latin") == PLUGIN


async def test_cli_lists_gaps(harness: Harness) -> None:
    from openlam.cli.main import _install, app

    gov = harness.governance()
    await gov.learn_hook(await harness.run(gov, [ASK_SMS]), {})
    _install()
    result = CliRunner().invoke(app, ["gaps", "--workspace", str(harness.workspace), "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert rows[0]["what"] == "SMS sending API" and rows[0]["count"] == 1
