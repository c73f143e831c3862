"""OpenAI-compatible servers and Ollama are spoken to over HTTP directly (issue 11: the
OpenAI SDK under pydantic-ai cost a quarter of a run's CPU and ≈ 90 MB): what they send
and how each kind of failure reaches the user."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from openlam import models
from openlam.config import load_settings
from openlam.errors import ModelError
from openlam.models.resolve import build_model
from tests.fakes.http import FakeHTTPServer, Response, json_response
from tests.fakes.model_servers import FakeOllama, FakeOpenAI

ASK = [{"role": "system", "content": "You plan."}, {"role": "user", "content": "Goal: x"}]
SCHEMA = {"type": "object", "properties": {"steps": {"type": "array"}}}


def _model(workspace: Path, spec: str, **settings):
    return build_model(spec, load_settings(workspace).with_overrides(**settings))


class _KeyedOpenAI(FakeOpenAI):
    def _handle(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> Response:
        self.authorization = headers.get("authorization")
        return super()._handle(method, path, headers, raw)


async def test_openai_request_carries_key_schema_and_messages(workspace):
    with _KeyedOpenAI([{"steps": []}]) as server:
        model = _model(
            workspace,
            "openai:fake-planner",
            openai_base_url=f"{server.url}/v1",
            openai_api_key="sk-test-123",
        )
        reply = await models.request(model, ASK, SCHEMA)
        body = server.chat_bodies[0]
    assert json.loads(reply.text) == {"steps": []}
    assert reply.input_tokens == server.prompt_tokens > 0
    assert body["model"] == "fake-planner"
    assert body["messages"] == ASK
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "plan", "schema": SCHEMA},
    }
    assert server.authorization == "Bearer sk-test-123"


async def test_ollama_request_uses_the_native_format(workspace):
    with FakeOllama([{"steps": []}]) as server:
        model = _model(workspace, "ollama:qwen3", ollama_url=server.url)
        reply = await models.request(model, ASK, SCHEMA)
        body = server.chat_bodies[0]
    assert json.loads(reply.text) == {"steps": []}
    assert body["format"] == SCHEMA and body["stream"] is False
    assert reply.input_tokens == server.prompt_tokens


@pytest.mark.parametrize("server_class", [FakeOpenAI, FakeOllama])
async def test_a_reply_given_as_a_tool_call_is_read_as_its_arguments(workspace, server_class):
    call = {"tool_call": {"name": "plan", "arguments": {"steps": [{"id": "s1"}]}}}
    with server_class([call]) as server:
        url = {"openai_base_url": f"{server.url}/v1"}
        if server_class is FakeOllama:
            url = {"ollama_url": server.url}
        spec = "openai:fake" if server_class is FakeOpenAI else "ollama:fake"
        reply = await models.request(_model(workspace, spec, **url), ASK, SCHEMA)
    assert json.loads(reply.text) == {"steps": [{"id": "s1"}]}


async def test_a_refused_key_is_not_retried_and_names_the_server(workspace):
    with FakeOpenAI([{"http_status": 401, "message": "Incorrect API key provided"}]) as server:
        model = _model(workspace, "openai:fake", openai_base_url=f"{server.url}/v1")
        with pytest.raises(ModelError) as failed:
            await models.request(model, ASK)
    message = str(failed.value)
    assert f"openai:fake at {server.url}/v1 answered HTTP 401" in message
    assert "Incorrect API key provided" in message
    assert server.chat_requests == 1  # a 4xx is not transient


class _Flaky(FakeHTTPServer):
    """Drops the connection without an answer on the first request, then answers."""

    def __init__(self) -> None:
        self.calls = 0
        super().__init__(self._handle)

    def _handle(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> Response:
        self.calls += 1
        if self.calls == 1:
            raise ConnectionResetError  # the fake server closes the socket unanswered
        return json_response(
            {"choices": [{"message": {"role": "assistant", "content": "ok"}}], "usage": {}}
        )


async def test_a_dropped_connection_is_retried(workspace):
    with _Flaky() as server:
        model = _model(workspace, "openai:fake", openai_base_url=server.url)
        reply = await models.request(model, ASK)
    assert reply.text == "ok" and server.calls == 2


def _answering(content_type: str, body: bytes) -> FakeHTTPServer:
    return FakeHTTPServer(lambda *_: (200, {"Content-Type": content_type}, body))


@pytest.mark.parametrize(
    ("content_type", "body", "shown"),
    [
        ("text/html", b"<html>hi", "<html>hi"),
        # nested deeper than Python's JSON decoder goes: an error, not a RecursionError
        ("application/json", b'{"choices": ' + b"[" * 100_000, '{"choices": [[['),
    ],
    ids=["not JSON", "nested too deep"],
)
async def test_an_unreadable_reply_is_a_model_error_with_what_came(
    workspace, content_type: str, body: bytes, shown: str
):
    with _answering(content_type, body) as server:
        model = _model(workspace, "openai:fake", openai_base_url=server.url)
        with pytest.raises(ModelError) as failed:
            await models.request(model, ASK)
    assert f"sent an unreadable reply: {shown}" in str(failed.value)


async def test_a_reply_larger_than_the_limit_is_refused_not_retried(workspace, monkeypatch):
    # a misbehaving server (or proxy) sending without end must not take the memory
    from openlam.models import direct

    monkeypatch.setattr(direct, "MAX_REPLY_BYTES", 64 * 1024)
    calls: list[str] = []

    def endless(method: str, path: str, headers: dict[str, str], raw: bytes) -> Response:
        calls.append(path)
        return 200, {"Content-Type": "application/json"}, b'{"choices": "' + b"x" * (1 << 20)

    with FakeHTTPServer(endless) as server:
        model = _model(workspace, "openai:fake", openai_base_url=server.url)
        with pytest.raises(ModelError) as failed:
            await models.request(model, ASK)
    assert f"openai:fake at {server.url} sent a reply larger than 0.0625 MiB" in str(failed.value)
    assert len(calls) == 1  # not retried: the same server would send the same


class _Parts(FakeHTTPServer):
    """A server that gives the message's content as a list of parts."""

    def __init__(self) -> None:
        message = {
            "role": "assistant",
            "content": [{"type": "text", "text": '{"steps": '}, {"type": "text", "text": "[]}"}],
        }
        reply = {"choices": [{"message": message}], "usage": {"prompt_tokens": 7}}
        super().__init__(lambda *_: json_response(reply))


async def test_content_given_as_parts_is_their_text(workspace):
    with _Parts() as server:
        reply = await models.request(
            _model(workspace, "openai:fake", openai_base_url=server.url), ASK
        )
    assert json.loads(reply.text) == {"steps": []} and reply.input_tokens == 7


def test_a_run_on_an_openai_compatible_server_loads_neither_sdk_nor_pydantic_ai(tmp_path):
    """What a run loads is what it costs in start-up and memory (bench/README.md): not
    the OpenAI SDK, not pydantic-ai, and not httpx's command-line client (rich, pygments, click),
    which httpx imports on its own import when they are installed."""
    script = textwrap.dedent(
        """
        import asyncio, sys
        from pathlib import Path
        from openlam import Workforce
        from openlam.config import load_settings
        from tests.fakes.model_servers import FakeOpenAI

        plan = {"steps": [{"id": "s1", "action": "files.write",
                           "args": {"path": "a.md", "content": "hi"}}]}

        async def main():
            ws = Path(sys.argv[1])
            with FakeOpenAI([plan]) as server:
                s = load_settings(ws).with_overrides(openai_base_url=server.url + "/v1")
                async with Workforce(settings=s, model="openai:fake") as wf:
                    outcome = await wf.run("write hi to a.md")
            print(outcome.status.value, (ws / "a.md").read_text())
            loaded = {m.split(".")[0] for m in sys.modules}
            print(sorted(loaded & {"openai", "pydantic_ai", "rich"}))

        asyncio.run(main())
        """
    )
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=root,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    status, loaded = done.stdout.strip().splitlines()[-2:]
    assert status == "completed hi"
    assert loaded == "[]"
