"""A run asks a person; the answer comes from another process; the run continues."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

from openlam import Workforce
from openlam.memory.store import Store
from openlam.testing import scripted_model


async def test_question_answered_from_another_process(settings, workspace):
    plan = {
        "steps": [
            {
                "id": "q",
                "action": "human.ask",
                "args": {"question": "Which city is the offsite in?"},
            },
            {
                "id": "w",
                "action": "files.write",
                "args": {"path": "offsite.md", "content": "Offsite city: ${q.output.answer}"},
            },
        ]
    }
    scripted_model("test:ask", [plan])
    events: list[dict] = []
    async with Workforce(settings=settings, model="test:ask") as wf:
        task = asyncio.create_task(wf.run("plan the offsite", on_event=events.append))
        for _ in range(200):
            if any(e["kind"] == "question" for e in events):
                break
            await asyncio.sleep(0.05)
        question = next(e for e in events if e["kind"] == "question")
        store = Store(settings.app_database_url)
        step = store.get_run(question["run_id"])["steps"][0]
        assert (step["step_id"], step["status"]) == ("q", "pending")

        def answer(*args):
            return subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "openlam",
                    "runs",
                    "answer",
                    question["run_id"],
                    *args,
                    "--as",
                    "dana",
                ],
                capture_output=True,
                text=True,
                timeout=60,
                env={**os.environ, "OPENLAM_WORKSPACE": str(workspace)},
            )

        wrong = await asyncio.to_thread(answer, "w", "Lisbon")
        assert wrong.returncode == 2 and "no question at step 'w'" in wrong.stderr
        done = await asyncio.to_thread(answer, "q", "Lisbon")
        assert done.returncode == 0, done.stderr
        outcome = await asyncio.wait_for(task, 30)
    assert outcome.status.value == "completed", outcome.summary
    assert (workspace / "offsite.md").read_text() == "Offsite city: Lisbon"
    assert outcome.steps[0].output == {
        "question": "Which city is the offsite in?",
        "answer": "Lisbon",
        "by": "dana",
    }


async def test_a_run_cancelled_while_it_waits_for_an_answer_stops_waiting(settings) -> None:
    from openlam.runtime import admin

    plan = {
        "steps": [
            {"id": "q", "action": "human.ask", "args": {"question": "Which city?"}},
            {
                "id": "w",
                "action": "files.write",
                "args": {"path": "city.md", "content": "x"},
                "depends_on": ["q"],
            },
        ]
    }
    scripted_model("test:ask-cancel", [plan])
    events: list[dict] = []
    async with Workforce(settings=settings, model="test:ask-cancel") as wf:
        task = asyncio.create_task(wf.run("ask then write", on_event=events.append))
        for _ in range(200):
            if any(e["kind"] == "question" for e in events):
                break
            await asyncio.sleep(0.05)
        run_id = next(e for e in events if e["kind"] == "question")["run_id"]
        admin.cancel(settings, wf.store, run_id, by="dana", reason="not needed")
        outcome = await asyncio.wait_for(task, 30)  # the wait is a day long by default
    assert outcome.status.value == "cancelled", outcome.summary
    assert "not needed" in outcome.steps[0].error
    assert not (settings.workspace / "city.md").exists()
