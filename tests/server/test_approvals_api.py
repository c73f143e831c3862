"""A run waiting for approval continues when an approver decides over the API; the
decision is checked as the CLI checks it (approver role, the workspace's approvers)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from openlam.server import create_app
from tests.server.conftest import BASE, Server, sse_events

POLICY = "rules:\n  - {id: ask-before-writing, action: files.write, decision: require_approval}\n"
GOAL = "write 'approved memo' to memo.md"


@pytest.fixture
def workspace(workspace: Path) -> Path:
    (workspace / "policies").mkdir()
    (workspace / "policies" / "org.yaml").write_text(POLICY, encoding="utf-8")
    return workspace


async def pending_approval(server: Server, headers: dict[str, str]) -> dict:
    for _ in range(600):
        found = (
            await server.client.get("/api/v1/approvals?status=pending", headers=headers)
        ).json()["approvals"]
        if found:
            return found[0]
        await asyncio.sleep(0.05)
    raise AssertionError("no approval was requested")


async def submit(server: Server, headers: dict[str, str]) -> str:
    reply = await server.client.post(
        "/api/v1/goals", json={"goal": GOAL, "model": "offline"}, headers=headers
    )
    assert reply.status_code == 202, reply.text
    return reply.json()["run_id"]


async def test_approving_over_the_api_completes_the_waiting_run(server: Server) -> None:
    op, approver = server.token("operator"), server.token("approver", "alice")
    run_id = await submit(server, op)
    stream = asyncio.create_task(sse_events(server.client, f"/api/v1/runs/{run_id}/events", op))
    approval = await pending_approval(server, op)
    assert approval["run_id"] == run_id and approval["action"] == "files.write"
    assert not (server.workspace / "memo.md").exists()
    assert (await server.client.get(f"/api/v1/runs/{run_id}", headers=op)).json()[
        "status"
    ] == "running"

    refused = await server.client.post(f"/api/v1/approvals/{approval['id']}/approve", headers=op)
    assert refused.status_code == 403  # an operator is not an approver

    decided = await server.client.post(
        f"/api/v1/approvals/{approval['id']}/approve", json={"comment": "fine"}, headers=approver
    )
    assert decided.status_code == 200, decided.text
    assert decided.json()["status"] == "approved" and decided.json()["decided_by"] == "alice"
    run = await server.wait_run(run_id, op)
    assert run["status"] == "completed"
    assert (server.workspace / "memo.md").read_text() == "approved memo"
    kinds = [name for name, _ in await stream]
    assert (
        kinds.index("approval.requested")
        < kinds.index("approval.decided")
        < kinds.index("run.finished")
    )
    again = await server.client.post(f"/api/v1/approvals/{approval['id']}/deny", headers=approver)
    assert again.status_code == 409 and "already approved" in again.json()["detail"]


async def test_denying_blocks_and_a_bad_edit_is_refused(server: Server) -> None:
    op, approver = server.token("operator"), server.token("approver", "alice")
    run_id = await submit(server, op)
    approval = await pending_approval(server, op)
    bad = await server.client.post(
        f"/api/v1/approvals/{approval['id']}/edit",
        json={"args": {"no_such_field": 1}},
        headers=approver,
    )
    assert bad.status_code == 400 and "no argument 'no_such_field'" in bad.json()["detail"]
    assert bad.json()["fix"].startswith("its arguments:")
    denied = await server.client.post(
        f"/api/v1/approvals/{approval['id']}/deny", json={"comment": "not now"}, headers=approver
    )
    assert denied.json()["status"] == "denied"
    run = await server.wait_run(run_id, op)
    assert run["status"] in ("blocked", "failed") and not (server.workspace / "memo.md").exists()


async def test_edit_and_approve_writes_the_edited_content(server: Server) -> None:
    op, approver = server.token("operator"), server.token("approver", "alice")
    run_id = await submit(server, op)
    approval = await pending_approval(server, op)
    edited = await server.client.post(
        f"/api/v1/approvals/{approval['id']}/edit",
        json={"args": {"content": "edited memo"}},
        headers=approver,
    )
    assert edited.status_code == 200 and edited.json()["status"] == "edited"
    assert (await server.wait_run(run_id, op))["status"] == "completed"
    assert (server.workspace / "memo.md").read_text() == "edited memo"


async def test_the_workspaces_approvers_are_checked_as_for_the_cli(workspace: Path) -> None:
    (workspace / "openlam.toml").write_text(
        '[governance.approvers]\n"*" = ["carol"]\n', encoding="utf-8"
    )
    app = create_app(workspace)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url=BASE, timeout=60) as client,
    ):
        server = Server(app, client, workspace)
        op = server.token("operator")
        await submit(server, op)
        approval = await pending_approval(server, op)
        alice = await client.post(
            f"/api/v1/approvals/{approval['id']}/approve", headers=server.token("approver", "alice")
        )
        assert alice.status_code == 403
        assert "alice does not have the approver role" in alice.json()["detail"]
        carol = await client.post(
            f"/api/v1/approvals/{approval['id']}/approve", headers=server.token("approver", "carol")
        )
        assert carol.status_code == 200 and carol.json()["decided_by"] == "carol"
