"""The official ``openai`` client, unmodified, gets goals done through OpenLAM's
OpenAI-compatible API (a real ``openlam serve``, the offline planner)."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.server.compat.conftest import APPROVAL_PREFIX, LiveServer


def client(server: LiveServer, role: str = "operator") -> openai.OpenAI:
    return openai.OpenAI(
        base_url=f"{server.url}/v1", api_key=server.tokens[role], max_retries=0, timeout=120
    )


def test_a_goal_gets_done_and_the_reply_is_the_report(live_server: LiveServer) -> None:
    reply = client(live_server).chat.completions.create(
        model="openlam",
        messages=[
            {"role": "system", "content": "You are helpful."},
            {"role": "user", "content": "write 'hello from openai' to openai.md"},
        ],
    )
    text = reply.choices[0].message.content or ""
    assert (live_server.workspace / "openai.md").read_text() == "hello from openai"
    assert text.startswith("**completed**"), text
    assert "files.write: succeeded (verified)" in text and "files.read: succeeded" in text
    assert reply.id.startswith("chatcmpl-run-") and reply.id.removeprefix("chatcmpl-") in text
    assert reply.choices[0].finish_reason == "stop" and reply.model == "openlam"
    assert reply.usage is not None and reply.usage.total_tokens == 0  # no model was asked


def test_streaming_sends_the_steps_as_they_run_then_the_report(live_server: LiveServer) -> None:
    stream = client(live_server).chat.completions.create(
        model="openlam",
        stream=True,
        stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "write 'streamed' to streamed.md"}],
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    lines = text.splitlines()
    assert lines[0].startswith("Working on it: run run-"), lines
    started = lines.index("… s1 files.write")
    finished = next(i for i, line in enumerate(lines) if line.startswith("✓ s1 files.write"))
    report = next(i for i, line in enumerate(lines) if line.startswith("**completed**"))
    assert started < finished < report, lines
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None  # include_usage
    assert len({c.id for c in chunks}) == 1
    assert (live_server.workspace / "streamed.md").read_text() == "streamed"


def test_the_raw_stream_ends_with_done(live_server: LiveServer) -> None:
    with httpx.stream(
        "POST",
        f"{live_server.url}/v1/chat/completions",
        headers=live_server.bearer("operator"),
        timeout=120,
        json={
            "model": "openlam",
            "stream": True,
            "messages": [{"role": "user", "content": "write 'raw' to raw.md"}],
        },
    ) as reply:
        assert reply.headers["content-type"].startswith("text/event-stream")
        events = [line for line in reply.iter_lines() if line]
    assert all(line.startswith("data: ") for line in events), events
    assert events[-1] == "data: [DONE]"


def test_a_run_waiting_for_approval_says_so_with_the_approval_id(live_server: LiveServer) -> None:
    reply = client(live_server).chat.completions.create(
        model="openlam",
        messages=[{"role": "user", "content": f"write 'reviewed' to {APPROVAL_PREFIX}-openai.md"}],
    )
    text = reply.choices[0].message.content or ""
    run_id = reply.id.removeprefix("chatcmpl-")
    pending = httpx.get(
        f"{live_server.url}/api/v1/approvals",
        params={"status": "pending", "run_id": run_id},
        headers=live_server.bearer("viewer"),
    ).json()["approvals"]
    assert len(pending) == 1, pending
    assert text.startswith("**waiting**"), text
    assert f"Approval **{pending[0]['id']}**" in text and "files.write" in text
    assert f"openlam approvals approve {pending[0]['id']}" in text
    assert not (live_server.workspace / f"{APPROVAL_PREFIX}-openai.md").exists()


def test_models_lists_the_workforce_and_its_agents(live_server: LiveServer) -> None:
    ids = [m.id for m in client(live_server, "viewer").models.list()]
    assert ids[0] == "openlam" and "openlam/chief_of_staff" in ids and len(ids) > 100
    assert client(live_server, "viewer").models.retrieve("openlam").id == "openlam"


def test_an_agent_model_runs_as_that_agent(live_server: LiveServer) -> None:
    stream = client(live_server).chat.completions.create(
        model="openlam/chief_of_staff",
        stream=True,
        messages=[{"role": "user", "content": "write 'x' to agent.md"}],
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert "(agent chief_of_staff" in text, text


def test_unknown_model_is_openai_404(live_server: LiveServer) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client(live_server).chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "hi"}]
        )
    error = caught.value.body
    assert isinstance(error, dict) and error["code"] == "model_not_found", error
    assert "'gpt-4o' not found" in error["message"] and "openlam/<agent-id>" in error["message"]


def test_tokens_and_roles(live_server: LiveServer) -> None:
    message = [{"role": "user", "content": "write 'no' to no.md"}]
    with pytest.raises(openai.PermissionDeniedError) as low:
        client(live_server, "viewer").chat.completions.create(model="openlam", messages=message)
    assert "operator" in low.value.body["message"]
    bad = openai.OpenAI(base_url=f"{live_server.url}/v1", api_key="not-a-token", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.chat.completions.create(model="openlam", messages=message)
    assert not (live_server.workspace / "no.md").exists()


def test_bad_requests_are_openai_errors(live_server: LiveServer) -> None:
    url, headers = f"{live_server.url}/v1/chat/completions", live_server.bearer("operator")
    no_user = httpx.post(
        url,
        headers=headers,
        json={
            "model": "openlam",
            "messages": [{"role": "system", "content": "only a system prompt"}],
        },
    )
    assert no_user.status_code == 400
    assert "last user message" in no_user.json()["error"]["message"]
    invalid = httpx.post(url, headers=headers, json={"model": "openlam", "messages": "hi"})
    assert invalid.status_code == 400 and invalid.json()["error"]["type"] == "invalid_request_error"
