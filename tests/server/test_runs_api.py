"""Goals submitted over the API run on the server's own queue worker — never in the
request — and can be followed live over server-sent events."""

from __future__ import annotations

import json

import pytest

from tests.server.conftest import Server, sse_events

GOAL = "write 'hello from the API' to hello.md"


async def test_health_needs_no_token(server: Server) -> None:
    server.token("admin")  # authentication is on
    reply = await server.client.get("/api/v1/health")
    assert reply.status_code == 200
    assert reply.json()["status"] == "ok" and reply.json()["worker"] is True


async def test_submit_returns_at_once_and_the_worker_completes_the_run(server: Server) -> None:
    op = server.token("operator")
    reply = await server.client.post(
        "/api/v1/goals", json={"goal": GOAL, "model": "offline"}, headers=op
    )
    assert reply.status_code == 202, reply.text
    queued = reply.json()
    assert queued["status"] == "queued" and queued["run_id"].startswith("run-")
    assert reply.headers["location"] == f"/api/v1/runs/{queued['run_id']}"
    run = await server.wait_run(queued["run_id"], op)
    assert run["status"] == "completed", run
    assert (server.workspace / "hello.md").read_text() == "hello from the API"
    assert [s["action"] for s in run["steps"]] == ["files.write", "files.read"]
    assert run["outcome"]["status"] == "completed"
    listed = (await server.client.get("/api/v1/runs", headers=op)).json()
    assert [r["id"] for r in listed["runs"]] == [queued["run_id"]]


async def test_the_event_stream_shows_steps_then_the_end(server: Server) -> None:
    op = server.token("operator")
    run_id = (
        await server.client.post(
            "/api/v1/goals", json={"goal": GOAL, "model": "offline"}, headers=op
        )
    ).json()["run_id"]
    events = await sse_events(server.client, f"/api/v1/runs/{run_id}/events", op)
    kinds = [name for name, _ in events]
    assert kinds[0] == "run.started" and kinds[-1] == "run.finished", kinds
    assert kinds.count("step.started") == 2 and kinds.count("step.finished") == 2
    assert kinds.index("plan") < kinds.index("step.started")
    assert events[-1][1]["status"] == "completed" and events[-1][1]["run_id"] == run_id
    # a finished run's stream replays it from the log and ends
    again = await sse_events(server.client, f"/api/v1/runs/{run_id}/events", op)
    assert [name for name, _ in again] == kinds


@pytest.mark.parametrize("path", ["/api/v1/runs", "/api/v1/approvals", "/api/v1/gaps"])
async def test_without_a_token_401_as_problem_json(server: Server, path: str) -> None:
    server.token("viewer")
    reply = await server.client.get(path)
    assert reply.status_code == 401
    assert reply.headers["content-type"] == "application/problem+json"
    body = reply.json()
    assert body["status"] == 401 and body["title"] and "openlam tokens create" in body["detail"]


async def test_a_viewer_cannot_submit(server: Server) -> None:
    reply = await server.client.post(
        "/api/v1/goals", json={"goal": GOAL}, headers=server.token("viewer")
    )
    assert reply.status_code == 403
    assert "operator" in reply.json()["detail"]


async def test_unknown_run_and_bad_input_are_problems(server: Server) -> None:
    op = server.token("operator")
    missing = await server.client.get("/api/v1/runs/run-nope", headers=op)
    assert missing.status_code == 404 and missing.json()["status"] == 404
    assert missing.headers["content-type"] == "application/problem+json"
    bad = await server.client.post("/api/v1/goals", json={"goal": ""}, headers=op)
    assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"
    assert bad.json()["errors"][0]["where"] == "body.goal"
    nowhere = await server.client.get("/api/v1/nothing-here", headers=op)
    assert nowhere.status_code == 404 and nowhere.json()["title"] == "Not Found"


async def test_a_webhook_trigger_starts_its_goal_on_the_server(server: Server) -> None:
    admin = server.token("admin")
    made = await server.client.post(
        "/api/v1/triggers",
        headers=admin,
        json={
            "kind": "webhook",
            "name": "deploys",
            "goal": "write 'deployed' to deploy.md",
            "agent": "operator",
        },
    )
    assert made.status_code == 201, made.text
    secret = made.json()["secret"]
    listed = (await server.client.get("/api/v1/triggers", headers=admin)).json()["triggers"]
    assert listed[0]["name"] == "deploys" and "secret" not in json.dumps(listed)
    wrong = await server.client.post(
        "/hooks/deploys", content=b"{}", headers={"X-OpenLAM-Token": "nope"}
    )
    assert wrong.status_code == 401
    fired = await server.client.post(
        "/hooks/deploys", content=b'{"v": 1}', headers={"X-OpenLAM-Token": secret}
    )
    assert fired.status_code == 202, fired.text
    assert fired.json()["status"] == "queued"
