"""A model request ends within ``model_timeout``, retries included, and its error names
the model, the server and the setting to change (issue 8, "a hung model")."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from openlam import models
from openlam.config import load_settings
from openlam.errors import ModelError
from openlam.models.resolve import build_model
from tests.fakes.model_servers import FakeOllama, FakeOpenAI

ASK = [{"role": "user", "content": "Goal: anything"}]
BROKEN = {"http_status": 500, "message": "llama runner process has terminated"}


def _model(workspace: Path, spec: str, timeout: float, **env: str):
    settings = load_settings(workspace).with_overrides(model_timeout=timeout, **env)
    return build_model(spec, settings)


@pytest.mark.parametrize(
    "server_class, spec, url_setting",
    [
        (FakeOllama, "ollama:fake-planner", "ollama_url"),
        (FakeOpenAI, "openai:fake-planner", "openai_base_url"),
    ],
)
async def test_a_hung_server_fails_within_the_timeout(workspace, server_class, spec, url_setting):
    with server_class([{"steps": []}], latency=3600) as server:  # accepts, never answers
        url = server.url + ("/v1" if server_class is FakeOpenAI else "")
        model = _model(workspace, spec, 1.5, **{url_setting: url})
        started = time.monotonic()
        with pytest.raises(ModelError) as failed:
            await models.request(model, ASK)
        took = time.monotonic() - started
    message = str(failed.value)
    assert f"{spec} at {url}" in message and "did not answer within 1.5 s" in message
    assert "model_timeout" in message and "OPENLAM_MODEL_TIMEOUT" in message
    # One attempt used the whole deadline: no retries after it (the old code sent three,
    # each with the full timeout).
    assert server.chat_requests == 1
    assert took < 1.5 + 10  # a correctness bound (the deadline held), not a performance one


async def test_a_failing_ollama_chat_fails_fast_with_the_status(workspace):
    with FakeOllama(lambda _body: BROKEN) as ollama:
        model = _model(workspace, "ollama:fake-planner", 60, ollama_url=ollama.url)
        with pytest.raises(ModelError) as failed:
            await models.request(model, ASK)
    message = str(failed.value)
    assert f"ollama:fake-planner at {ollama.url} answered HTTP 500" in message
    assert "llama runner process has terminated" in message and "--model offline" in message
    assert ollama.chat_requests == 3  # retried (5xx is transient), and then given up


async def test_refused_connection_names_the_server_setting(workspace):
    url = "http://127.0.0.1:9"  # the discard port: nothing listens
    model = _model(workspace, "ollama:qwen3", 60, ollama_url=url)
    with pytest.raises(ModelError) as failed:
        await models.request(model, ASK)
    message = str(failed.value)
    assert f"ollama:qwen3 at {url} could not be reached" in message
    assert "OPENLAM_OLLAMA_URL" in message


async def test_an_explicit_timeout_bounds_a_model_without_one(workspace):
    from pydantic_ai.messages import ModelResponse, TextPart
    from pydantic_ai.models.function import FunctionModel

    async def slow(_messages, _info) -> ModelResponse:
        import asyncio

        await asyncio.sleep(3600)
        return ModelResponse(parts=[TextPart(content="never")])

    with pytest.raises(ModelError, match=r"did not answer within 0\.5 s"):
        await models.request(FunctionModel(slow), ASK, timeout=0.5)
    assert models.timeout_of(FunctionModel(slow)) == load_settings(workspace).model_timeout


def test_model_timeout_is_a_setting(workspace, monkeypatch):
    assert load_settings(workspace).model_timeout == 60
    (workspace / "openlam.toml").write_text("[openlam]\nmodel_timeout = 90\n")
    assert load_settings(workspace).model_timeout == 90
    monkeypatch.setenv("OPENLAM_MODEL_TIMEOUT", "7.5")
    settings = load_settings(workspace)
    assert settings.model_timeout == 7.5
    assert models.timeout_of(build_model("ollama:qwen3", settings)) == 7.5
