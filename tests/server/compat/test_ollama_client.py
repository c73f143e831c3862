"""The official ``ollama`` client, unmodified, gets goals done through OpenLAM's
Ollama-compatible API (a real ``openlam serve``, the offline planner)."""

from __future__ import annotations

import httpx
import ollama
import pytest

from tests.server.compat.conftest import APPROVAL_PREFIX, LiveServer


def client(server: LiveServer, role: str = "operator") -> ollama.Client:
    return ollama.Client(host=server.url, headers=server.bearer(role), timeout=120)


def test_chat_gets_a_goal_done(live_server: LiveServer) -> None:
    reply = client(live_server).chat(
        model="openlam",
        messages=[{"role": "user", "content": "write 'hello from ollama' to ollama.md"}],
    )
    assert (live_server.workspace / "ollama.md").read_text() == "hello from ollama"
    assert reply.done and reply.done_reason == "stop"
    assert reply.message.role == "assistant"
    assert reply.message.content.startswith("**completed**"), reply.message.content
    assert "files.write: succeeded (verified)" in reply.message.content


def test_streamed_chat_shows_the_steps_then_the_report(live_server: LiveServer) -> None:
    parts = list(
        client(live_server).chat(
            model="openlam:latest",
            stream=True,
            messages=[{"role": "user", "content": "write 'streamed' to ollama-stream.md"}],
        )
    )
    assert [p.done for p in parts].count(True) == 1 and parts[-1].done
    lines = "".join(p.message.content for p in parts).splitlines()
    started = lines.index("… s1 files.write")
    report = next(i for i, line in enumerate(lines) if line.startswith("**completed**"))
    assert lines[0].startswith("Working on it: run run-") and started < report, lines
    assert (live_server.workspace / "ollama-stream.md").read_text() == "streamed"


def test_generate_streamed_and_not(live_server: LiveServer) -> None:
    whole = client(live_server).generate(model="openlam", prompt="write 'g1' to g1.md")
    assert whole.done and whole.response.startswith("**completed**"), whole.response
    parts = list(
        client(live_server).generate(model="openlam", prompt="write 'g2' to g2.md", stream=True)
    )
    text = "".join(p.response for p in parts)
    assert "✓ s1 files.write" in text and "**completed**" in text and parts[-1].done
    assert (live_server.workspace / "g1.md").read_text() == "g1"
    assert (live_server.workspace / "g2.md").read_text() == "g2"


def test_a_run_waiting_for_approval_names_the_approval(live_server: LiveServer) -> None:
    reply = client(live_server).chat(
        model="openlam",
        messages=[
            {"role": "user", "content": f"write 'ollama review' to {APPROVAL_PREFIX}-ollama.md"}
        ],
    )
    pending = httpx.get(
        f"{live_server.url}/api/v1/approvals",
        params={"status": "pending"},
        headers=live_server.bearer("viewer"),
    ).json()["approvals"]
    mine = [a for a in pending if a["args"].get("content") == "ollama review"]
    assert len(mine) == 1, pending
    assert reply.message.content.startswith("**waiting**")
    assert mine[0]["id"] in reply.message.content


def test_tags_show_version(live_server: LiveServer) -> None:
    c = client(live_server, "viewer")
    names = [m.model for m in c.list().models]
    assert names[0] == "openlam:latest" and "openlam/chief_of_staff:latest" in names
    shown = c.show("openlam/chief_of_staff")
    assert shown.modelinfo and shown.modelinfo["openlam.agent"] == "chief_of_staff"
    version = httpx.get(f"{live_server.url}/api/version", headers=live_server.bearer("viewer"))
    assert version.json()["version"] and version.json()["openlam"]


def test_errors_in_ollama_shape(live_server: LiveServer) -> None:
    with pytest.raises(ollama.ResponseError) as unknown:
        client(live_server).chat(model="llama3", messages=[{"role": "user", "content": "x"}])
    assert unknown.value.status_code == 404 and "'llama3' not found" in unknown.value.error
    with pytest.raises(ollama.ResponseError) as low:
        client(live_server, "viewer").generate(model="openlam", prompt="write 'n' to n.md")
    assert low.value.status_code == 403 and "operator" in low.value.error
    anonymous = httpx.post(f"{live_server.url}/api/chat", json={"model": "openlam"})
    assert anonymous.status_code == 401 and set(anonymous.json()) == {"error"}
    assert not (live_server.workspace / "n.md").exists()
