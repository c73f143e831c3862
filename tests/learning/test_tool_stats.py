"""Tool reliability counts every call of every action a run ran, across runs — each
run's calls written in one transaction (several actions, repeats of one)."""

from __future__ import annotations

from pathlib import Path

from openlam.config import load_settings
from openlam.learning.store import LearningStore
from openlam.memory.store import Store


def test_calls_of_several_actions_and_repeats_add_up_across_runs(workspace: Path) -> None:
    url = load_settings(workspace).app_database_url
    Store(url)
    store = LearningStore(url)
    store.record_calls(
        [
            ("crm.get", "crm", True, 1.0, None),
            ("email.send", "email", False, 2.0, "SMTP 451"),
            ("crm.get", "crm", True, 3.0, None),
        ]
    )
    store.record_calls(
        [("email.send", "email", True, 4.0, None), ("email.send", "email", False, 5.0, "SMTP 451")]
    )
    store.record_calls([])
    stats = {t["action"]: t for t in store.tool_stats()}
    assert set(stats) == {"crm.get", "email.send"}
    crm, email = stats["crm.get"], stats["email.send"]
    assert (crm["calls"], crm["failures"], crm["latencies"], crm["source"]) == (
        2,
        0,
        [1.0, 3.0],
        "crm",
    )
    assert (email["calls"], email["failures"], email["latencies"]) == (3, 2, [2.0, 4.0, 5.0])
    assert email["errors"] == {"SMTP 451": 2}
    assert [t["action"] for t in store.tool_stats(["email.send", "web.fetch"])] == ["email.send"]
