"""The rest of the API answers what the CLI shows, through the same functions: agents
and departments, actions, adding a source, schedules, audit, gaps, learning, and run
listing with filters and pages, cancel and resume."""

from __future__ import annotations

import asyncio
import json
import time

from tests.server.conftest import Server

SPEC = {
    "openapi": "3.1.0",
    "info": {"title": "Tickets", "version": "1"},
    "servers": [{"url": "http://127.0.0.1:9"}],
    "paths": {
        "/tickets": {
            "get": {"operationId": "list_tickets", "responses": {"200": {"description": "ok"}}},
            "post": {
                "operationId": "open_ticket",
                "requestBody": {
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {"title": {"type": "string"}},
                            }
                        }
                    }
                },
                "responses": {"200": {"description": "ok"}},
            },
        }
    },
}


async def test_agents_and_departments(server: Server) -> None:
    viewer = server.token("viewer")
    departments = (await server.client.get("/api/v1/departments", headers=viewer)).json()
    assert len(departments["departments"]) >= 10
    assert sum(d["agents"] for d in departments["departments"]) >= 100
    agents = (await server.client.get("/api/v1/agents", headers=viewer)).json()["agents"]
    assert len(agents) == sum(d["agents"] for d in departments["departments"])
    finance = (await server.client.get("/api/v1/agents?department=finance", headers=viewer)).json()[
        "agents"
    ]
    assert finance and {a["department"] for a in finance} == {"finance"}
    one = (await server.client.get(f"/api/v1/agents/{finance[0]['id']}", headers=viewer)).json()
    assert one["id"] == finance[0]["id"] and one["permitted"]
    assert all(set(p) == {"pattern", "actions"} for p in one["permitted"])
    missing = await server.client.get("/api/v1/agents/nobody_here", headers=viewer)
    assert missing.status_code in (400, 404) and missing.json()["status"] == missing.status_code


async def test_adding_an_openapi_source_makes_its_operations_actions(server: Server) -> None:
    (server.workspace / "specs").mkdir()
    (server.workspace / "specs" / "tickets.json").write_text(json.dumps(SPEC))
    admin, viewer = server.token("admin"), server.token("viewer")
    body = {"kind": "openapi", "name": "tickets", "spec": "specs/tickets.json"}
    refused = await server.client.post("/api/v1/sources", json=body, headers=viewer)
    assert refused.status_code == 403
    added = await server.client.post("/api/v1/sources", json=body, headers=admin)
    assert added.status_code == 201, added.text
    names = {a["name"]: a["risk"] for a in added.json()["actions"]}
    assert names == {"tickets.list_tickets": "read", "tickets.open_ticket": "external"}
    sources = (await server.client.get("/api/v1/sources", headers=viewer)).json()["sources"]
    assert [s["name"] for s in sources] == ["tickets"]
    actions = (
        await server.client.get("/api/v1/actions?source=openapi:tickets", headers=viewer)
    ).json()["actions"]
    assert {a["name"] for a in actions} == set(names)
    again = await server.client.post("/api/v1/sources", json=body, headers=admin)
    assert again.status_code == 409 and "already configured" in again.json()["detail"]
    gone = await server.client.delete("/api/v1/sources/tickets", headers=admin)
    assert gone.status_code == 204
    assert (await server.client.get("/api/v1/sources", headers=viewer)).json()["sources"] == []


async def test_schedules_are_added_listed_and_removed(server: Server) -> None:
    admin = server.token("admin")
    added = await server.client.post(
        "/api/v1/schedules",
        headers=admin,
        json={"when": "every weekday at 9:00", "goal": "write 'tick' to tick.md", "name": "ticker"},
    )
    assert added.status_code == 201, added.text
    assert added.json()["cron"] == "0 0 9 * * 1-5"  # DBOS cron: seconds first
    listed = (await server.client.get("/api/v1/schedules", headers=admin)).json()["schedules"]
    assert [s["name"] for s in listed] == ["ticker"]
    bad = await server.client.post(
        "/api/v1/schedules", headers=admin, json={"when": "now and then", "goal": "x"}
    )
    assert bad.status_code == 400 and bad.json()["detail"]
    assert (
        await server.client.delete("/api/v1/schedules/ticker", headers=admin)
    ).status_code == 204
    assert (
        await server.client.delete("/api/v1/schedules/ticker", headers=admin)
    ).status_code == 404


async def test_runs_filters_pages_audit_and_learning(server: Server) -> None:
    op = server.token("operator")
    ids = []
    for i in range(3):
        reply = await server.client.post(
            "/api/v1/goals",
            headers=op,
            json={"goal": f"write 'n{i}' to n{i}.md", "model": "offline"},
        )
        ids.append(reply.json()["run_id"])
    for run_id in ids:
        assert (await server.wait_run(run_id, op))["status"] == "completed"
    first = (await server.client.get("/api/v1/runs?limit=2", headers=op)).json()
    second = (
        await server.client.get(f"/api/v1/runs?limit=2&offset={first['next_offset']}", headers=op)
    ).json()
    assert [r["id"] for r in first["runs"] + second["runs"]] == ids[::-1]
    assert second["next_offset"] is None
    assert (await server.client.get("/api/v1/runs?status=failed", headers=op)).json()["runs"] == []
    later = (await server.client.get(f"/api/v1/runs?since={time.time() + 60}", headers=op)).json()
    assert later["runs"] == []
    iso = (await server.client.get("/api/v1/runs?since=2000-01-01T00:00:00", headers=op)).json()
    assert len(iso["runs"]) == 3
    bad = await server.client.get("/api/v1/runs?since=yesterday", headers=op)
    assert bad.status_code == 422
    verified = (await server.client.get("/api/v1/audit/verify", headers=op)).json()
    assert verified["ok"] is True and verified["count"] > 0
    records = (
        await server.client.get(f"/api/v1/audit/records?run_id={ids[0]}", headers=op)
    ).json()["records"]
    assert records and all(r["run_id"] == ids[0] for r in records)
    assert (await server.client.get("/api/v1/audit/export", headers=op)).status_code == 403
    exported = await server.client.get("/api/v1/audit/export", headers=server.token("admin"))
    assert len(exported.text.splitlines()) == verified["count"]
    playbooks = (await server.client.get("/api/v1/learning/playbooks", headers=op)).json()
    assert isinstance(playbooks["playbooks"], list)
    tools = (await server.client.get("/api/v1/learning/tools", headers=op)).json()["tools"]
    assert {t["action"] for t in tools} >= {"files.write", "files.read"}
    assert (await server.client.get("/api/v1/gaps", headers=op)).json() == {"gaps": []}


async def test_cancel_a_queued_run_and_resume_refusals(no_worker_server: Server) -> None:
    server = no_worker_server
    op = server.token("operator")
    run_id = (
        await server.client.post(
            "/api/v1/goals",
            headers=op,
            json={"goal": "write 'never' to never.md", "model": "offline"},
        )
    ).json()["run_id"]
    cancelled = await server.client.post(
        f"/api/v1/runs/{run_id}/cancel", headers=op, json={"reason": "not needed"}
    )
    assert cancelled.status_code == 202 and "will not start" in cancelled.json()["detail"]
    run = (await server.client.get(f"/api/v1/runs/{run_id}", headers=op)).json()
    assert run["status"] == "cancelled"
    from tests.server.conftest import sse_events

    events = await asyncio.wait_for(
        sse_events(server.client, f"/api/v1/runs/{run_id}/events", op), 30
    )
    assert [name for name, _ in events] == ["run.finished"]  # made from the stored outcome
    assert events[0][1]["status"] == "cancelled"
    again = await server.client.post(f"/api/v1/runs/{run_id}/cancel", headers=op)
    assert again.status_code == 409
    resumed = await server.client.post(f"/api/v1/runs/{run_id}/resume", headers=op)
    assert resumed.status_code == 409 and "already ended" in resumed.json()["detail"]
    missing = await server.client.post("/api/v1/runs/run-nope/resume", headers=op)
    assert missing.status_code == 404


async def test_a_question_is_answered_over_the_api(server: Server) -> None:
    from openlam.testing import scripted_model

    scripted_model(
        "test:srv-ask",
        [
            {
                "steps": [
                    {"id": "q", "action": "human.ask", "args": {"question": "Which city?"}},
                    {
                        "id": "w",
                        "action": "files.write",
                        "args": {"path": "city.md", "content": "City: ${q.output.answer}"},
                    },
                ]
            }
        ],
    )
    op = server.token("operator", "olivia")
    run_id = (
        await server.client.post(
            "/api/v1/goals", headers=op, json={"goal": "plan the offsite", "model": "test:srv-ask"}
        )
    ).json()["run_id"]
    for _ in range(600):  # (the ASGI test transport buffers a stream until it ends)
        steps = (await server.client.get(f"/api/v1/runs/{run_id}", headers=op)).json()["steps"]
        if steps and steps[0]["status"] == "pending":
            break
        await asyncio.sleep(0.05)
    from openlam.runtime.eventlog import EventLog

    log = EventLog(server.app.state.workforce.store.engine)
    questions: list[dict] = []
    for _ in range(200):  # the event log is written within moments, not with the step
        questions = [data for _, data in log.read(run_id) if data["kind"] == "question"]
        if questions:
            break
        await asyncio.sleep(0.05)
    [question] = questions
    assert question["question"] == "Which city?" and question["step"] == "q"
    wrong = await server.client.post(
        f"/api/v1/runs/{run_id}/answer", headers=op, json={"step": "w", "text": "Lisbon"}
    )
    assert wrong.status_code == 400 and "questions waiting: q" in wrong.json()["fix"]
    answered = await server.client.post(
        f"/api/v1/runs/{run_id}/answer", headers=op, json={"step": "q", "text": "Lisbon"}
    )
    assert answered.status_code == 200, answered.text
    assert (await server.wait_run(run_id, op))["status"] == "completed"
    assert (server.workspace / "city.md").read_text() == "City: Lisbon"
    again = await server.client.post(
        f"/api/v1/runs/{run_id}/answer", headers=op, json={"step": "q", "text": "Porto"}
    )
    assert again.status_code == 409
