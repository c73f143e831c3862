"""An MCP client from the ``mcp`` package hands goals to the workforce: over stdio
(spawning ``openlam mcp serve``) and over streamable HTTP (``/mcp`` of a real
``openlam serve``, token auth)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

from tests.server.compat.conftest import APPROVAL_PREFIX, LiveServer, offline_env

TOOLS = {"run_goal", "run_status", "list_approvals", "decide_approval", "list_agents"}


def structured(result: Any) -> Any:
    assert not result.is_error, result.content
    data = result.structured_content
    return data.get("result", data) if isinstance(data, dict) else data


def http_client(server: LiveServer, role: str) -> Client:
    http = httpx2.AsyncClient(headers=server.bearer(role), timeout=120)
    return Client(streamable_http_client(f"{server.url}/mcp", http_client=http))


@pytest.mark.timeout(180)
async def test_run_goal_over_stdio(workspace: Path) -> None:
    params = StdioServerParameters(
        command=sys.executable,
        env=offline_env(),
        args=["-m", "openlam", "mcp", "serve", "--workspace", str(workspace)],
    )
    async with Client(stdio_client(params)) as client:
        tools = {t.name for t in (await client.list_tools()).tools}
        assert tools == TOOLS
        result = structured(
            await client.call_tool("run_goal", {"goal": "write 'hello over stdio' to stdio.md"})
        )
        assert result["status"] == "completed", result
        assert result["report"].startswith("**completed**")
        status = structured(await client.call_tool("run_status", {"run_id": result["run_id"]}))
        assert status["status"] == "completed"
        agents = structured(await client.call_tool("list_agents", {"department": "sales"}))
        assert agents and all(a["department"] == "sales" for a in agents)
    assert (workspace / "stdio.md").read_text() == "hello over stdio"


async def test_run_goal_over_http(live_server: LiveServer) -> None:
    async with http_client(live_server, "operator") as client:
        assert {t.name for t in (await client.list_tools()).tools} == TOOLS
        progress: list[str] = []

        async def on_progress(_done: float, _total: float | None, message: str | None) -> None:
            progress.append(message or "")

        result = structured(
            await client.call_tool(
                "run_goal",
                {"goal": "write 'hello over http' to mcp-http.md"},
                progress_callback=on_progress,
            )
        )
    assert result["status"] == "completed", result
    assert "… s1 files.write" in progress and progress[0].startswith("Working on it"), progress
    assert (live_server.workspace / "mcp-http.md").read_text() == "hello over http"


async def test_approval_wait_and_decision_over_http(live_server: LiveServer) -> None:
    async with http_client(live_server, "operator") as client:
        waiting = structured(
            await client.call_tool(
                "run_goal", {"goal": f"write 'via mcp' to {APPROVAL_PREFIX}-mcp.md"}
            )
        )
        assert waiting["status"] == "waiting" and len(waiting["approvals"]) == 1, waiting
        approval = waiting["approvals"][0]
        assert approval in waiting["report"]
        refused = await client.call_tool(
            "decide_approval", {"approval_id": approval, "decision": "approve"}
        )
        assert refused.is_error and "approver role" in refused.content[0].text
    async with http_client(live_server, "approver") as client:
        listed = structured(await client.call_tool("list_approvals", {"run_id": waiting["run_id"]}))
        assert [a["id"] for a in listed] == [approval]
        decided = structured(
            await client.call_tool(
                "decide_approval",
                {"approval_id": approval, "decision": "approve", "comment": "fine"},
            )
        )
        assert decided["status"] == "approved" and decided["decided_by"] == "approver-client"
        for _ in range(100):
            status = structured(await client.call_tool("run_status", {"run_id": waiting["run_id"]}))
            if status["status"] not in ("waiting", "running", "queued"):
                break
            import asyncio

            await asyncio.sleep(0.2)
        assert status["status"] == "completed", status
    assert (live_server.workspace / f"{APPROVAL_PREFIX}-mcp.md").read_text() == "via mcp"


async def test_http_needs_a_token(live_server: LiveServer) -> None:
    reply = httpx2.post(
        f"{live_server.url}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    )
    assert reply.status_code == 401
