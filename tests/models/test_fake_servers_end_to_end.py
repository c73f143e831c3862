"""A goal driven over real HTTP by a fake Ollama and a fake OpenAI-compatible server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from openlam import Workforce
from openlam.config import Settings
from tests.fakes.model_servers import FakeOllama, FakeOpenAI


def three_actions(site_url: str) -> dict:
    return {
        "steps": [
            {"id": "s1", "action": "http.get", "args": {"url": f"{site_url}/data.json"}},
            {
                "id": "s2",
                "action": "files.write",
                "args": {"path": "raw.json", "content": "${s1.output.text}"},
            },
            {
                "id": "s3",
                "action": "files.write",
                "args": {
                    "path": "summary.md",
                    "content": "Fetched ${s1.output.bytes} bytes from ${s1.output.url}",
                },
                "depends_on": ["s2"],
            },
        ]
    }


async def run(settings: Settings, model: str, goal: str):
    async with Workforce(settings=settings, model=model) as wf:
        return await wf.run(goal)


@pytest.mark.usefixtures("local_network")  # the test site is on loopback
async def test_fake_ollama_drives_a_goal_to_completed(settings, workspace: Path, site):
    with FakeOllama([three_actions(site.url)], model="qwen3:latest") as server:
        s = settings.with_overrides(ollama_url=server.url)
        outcome = await run(s, "ollama:qwen3:latest", "save the data and summarize it")
    assert outcome.status.value == "completed", outcome.summary
    assert [st.id for st in outcome.steps] == ["s1", "s2", "s3"]
    assert all(st.status.value == "succeeded" for st in outcome.steps)
    assert json.loads((workspace / "raw.json").read_text())["company"] == "Acme"
    assert (workspace / "summary.md").read_text() == f"Fetched 47 bytes from {site.url}/data.json"
    assert outcome.deliverables == ["raw.json", "summary.md"]
    # the planner asked for schema-constrained output with Ollama's native `format`
    body = server.chat_bodies[0]
    assert body["format"]["properties"]["steps"]["type"] == "array"
    assert body["messages"][0]["role"] == "system"
    assert "http.get" in body["messages"][0]["content"]
    assert outcome.usage.model_requests == 1 == server.chat_requests
    assert outcome.usage.input_tokens == server.prompt_tokens > 0


@pytest.mark.usefixtures("local_network")  # the test site is on loopback
async def test_fake_openai_drives_a_goal_to_completed(settings, workspace: Path, site):
    with FakeOpenAI([three_actions(site.url)]) as server:
        s = settings.with_overrides(openai_base_url=f"{server.url}/v1")
        outcome = await run(s, "openai:fake-planner", "save the data and summarize it")
    assert outcome.status.value == "completed", outcome.summary
    assert (workspace / "summary.md").read_text().startswith("Fetched 47 bytes")
    assert {st.id: st.status.value for st in outcome.steps} == {
        "s1": "succeeded",
        "s2": "succeeded",
        "s3": "succeeded",
    }
    body = server.chat_bodies[0]
    assert body["response_format"]["type"] == "json_schema"
    assert outcome.usage.input_tokens == server.prompt_tokens


@pytest.mark.usefixtures("local_network")  # the test site is on loopback
async def test_four_action_goal_costs_at_most_two_model_requests(settings, workspace, site):
    plan = {
        "steps": [
            {"id": "a", "action": "http.get", "args": {"url": f"{site.url}/page.html"}},
            {"id": "b", "action": "http.get", "args": {"url": f"{site.url}/data.json"}},
            {
                "id": "c",
                "action": "files.write",
                "args": {"path": "page.html", "content": "${a.output.text}"},
            },
            {
                "id": "d",
                "action": "files.write",
                "args": {"path": "data.json", "content": "${b.output.text}"},
            },
        ]
    }
    with FakeOpenAI([plan]) as server:
        s = settings.with_overrides(openai_base_url=f"{server.url}/v1")
        outcome = await run(s, "openai:fake-planner", "keep a copy of the page and the data")
        assert server.chat_requests <= 2
    assert outcome.status.value == "completed"
    assert len(outcome.steps) == 4
    assert (workspace / "page.html").read_text().startswith("<html>")


async def test_unreachable_model_server_fails_clearly(settings):
    s = settings.with_overrides(openai_base_url="http://127.0.0.1:9/v1")
    outcome = await run(s, "openai:nobody", "do something")
    assert outcome.status.value == "failed"
    assert "model" in outcome.summary and "reached" in outcome.summary


@pytest.mark.parametrize("status", [500, 401])
async def test_model_server_error_is_reported(settings, status):
    with FakeOpenAI(lambda _body: {"http_status": status, "message": "quota gone"}) as server:
        s = settings.with_overrides(openai_base_url=f"{server.url}/v1")
        outcome = await run(s, "openai:fake-planner", "do something")
    assert outcome.status.value == "failed"
    assert f"HTTP {status}" in outcome.summary
    assert server.chat_requests == (3 if status == 500 else 1)  # only 5xx is retried


async def test_empty_plan_is_not_success(settings):
    with FakeOpenAI([{"steps": [], "note": "I am not sure"}]) as server:
        s = settings.with_overrides(openai_base_url=f"{server.url}/v1")
        outcome = await run(s, "openai:fake-planner", "do something")
    assert outcome.status.value == "failed"
    assert "proposed no steps: I am not sure" in outcome.summary


@pytest.mark.usefixtures("local_network")  # the test site is on loopback
async def test_fake_anthropic_drives_a_goal_to_completed(settings, workspace, site, monkeypatch):
    from tests.fakes.model_servers import FakeAnthropic

    with FakeAnthropic([three_actions(site.url)]) as server:
        monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
        outcome = await run(settings, "anthropic:claude-test", "save the data and summarize it")
    assert outcome.status.value == "completed", outcome.summary
    assert (workspace / "summary.md").read_text().startswith("Fetched 47 bytes")
    assert server.chat_requests == 1 and outcome.usage.input_tokens == server.prompt_tokens
    assert (
        "http.get" in server.chat_bodies[0]["system"][0]["text"]
        if isinstance(server.chat_bodies[0]["system"], list)
        else "http.get" in server.chat_bodies[0]["system"]
    )


PLAN = {"steps": [{"id": "s1", "action": "files.write", "args": {"path": "a.md", "content": "A"}}]}


async def test_a_reply_cut_at_the_output_limit_is_named_as_such(settings, workspace: Path):
    partial = json.dumps(PLAN)[:40]  # the server stopped mid-JSON (finish_reason "length")
    with FakeOpenAI([{"cut_off": partial}, PLAN]) as server:
        s = settings.with_overrides(openai_base_url=f"{server.url}/v1")
        outcome = await run(s, "openai:fake", "write A to a.md")
        feedback = server.chat_bodies[1]["messages"][-1]["content"]
    assert outcome.status.value == "completed", outcome.summary
    assert "stopped at the model server's output limit" in feedback
    assert "not valid JSON" not in feedback  # the model did nothing wrong
    assert (workspace / "a.md").read_text() == "A"


async def test_replies_always_cut_off_end_the_run_saying_why(settings, workspace: Path):
    partial = json.dumps(PLAN)[:40]
    with FakeOllama([{"cut_off": partial}] * 5) as server:
        s = settings.with_overrides(ollama_url=server.url, max_plan_repairs=1)
        outcome = await run(s, "ollama:qwen3", "write A to a.md")
    assert outcome.status.value == "failed"
    assert "output limit" in outcome.summary and "raise the server's limit" in outcome.summary
    assert server.chat_requests == 2 and not (workspace / "a.md").exists()
