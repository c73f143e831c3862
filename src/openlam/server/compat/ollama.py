"""An Ollama-compatible API: the workforce answers as the model ``openlam`` (tag
``latest``), and ``openlam/<agent-id>`` for every agent.

``/api/chat`` (last user message) and ``/api/generate`` (the prompt) queue a goal and
answer with the run's honest report — streamed as Ollama does (newline-delimited JSON,
a line per step, then the report and a final ``done: true`` object) unless ``stream``
is false. ``/api/tags``, ``/api/show`` and ``/api/version`` answer as Ollama's do, so
chat front-ends built for Ollama list and pick the workforce. Send an OpenLAM token as
``Authorization: Bearer …`` (the Python client: ``ollama.Client(host=…,
headers={...})``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from openlam import __version__ as OPENLAM_VERSION
from openlam.server.api.common import Operator, Viewer, workforce
from openlam.server.auth import Principal
from openlam.server.compat import work
from openlam.server.compat.errors import OllamaRoute, ollama_body, stream_error

log = logging.getLogger("openlam.server")
router = APIRouter(prefix="/api", tags=["ollama-compatible"], route_class=OllamaRoute)
OLLAMA_API_VERSION = "0.12.0"  # the Ollama API this one answers like (clients check it)
STARTED = datetime.now(UTC).isoformat()


class Message(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: str = Field(max_length=32)
    content: str = ""


class ChatRequest(BaseModel):
    """Ollama's chat request; ``options``, ``format``, ``keep_alive``, ``tools`` are
    accepted and have no effect (the workforce plans with its own model)."""

    model_config = ConfigDict(extra="allow")
    model: str = Field(max_length=256, description="openlam[:latest] or openlam/<agent-id>.")
    messages: Annotated[list[Message], Field(max_length=1000)] = []
    stream: bool = True


class GenerateRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str = Field(max_length=256)
    prompt: str = Field("", max_length=100_000)
    stream: bool = True


class ShowRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str | None = Field(None, max_length=256)
    name: str | None = Field(None, max_length=256, description="Older clients' field.")


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _details() -> dict[str, Any]:
    return {
        "parent_model": "",
        "format": "openlam",
        "family": "openlam",
        "families": ["openlam"],
        "parameter_size": "",
        "quantization_level": "",
    }


def _tag(name: str) -> str:
    return name if ":" in name else f"{name}:latest"


@router.get("/version")
async def version(_principal: Principal = Viewer) -> dict[str, str]:
    return {"version": OLLAMA_API_VERSION, "openlam": OPENLAM_VERSION}


@router.get("/tags")
async def tags(request: Request, _principal: Principal = Viewer) -> dict[str, Any]:
    """``openlam:latest`` and ``openlam/<agent-id>:latest`` for every agent."""
    names = work.model_names(request.app.state.settings)
    return {
        "models": [
            {
                "name": _tag(n),
                "model": _tag(n),
                "modified_at": STARTED,
                "size": 0,
                "digest": hashlib.sha256(n.encode()).hexdigest(),
                "details": _details(),
            }
            for n in names
        ]
    }


@router.post("/show")
async def show(
    body: ShowRequest, request: Request, _principal: Principal = Viewer
) -> dict[str, Any]:
    name = body.model or body.name or ""
    agent = work.agent_of(request.app.state.settings, name, tags=True)
    about = (
        f"The OpenLAM workforce as {'agent ' + agent if agent else 'the general operator'}"
        ": the last user message is a goal; the reply is the run's report."
    )
    return {
        "modelfile": f"# {about}\nFROM openlam\n",
        "parameters": "",
        "template": "",
        "license": "AGPL-3.0",
        "details": _details(),
        "modified_at": STARTED,
        "model_info": {"general.architecture": "openlam", "openlam.agent": agent or "operator"},
        "capabilities": ["completion"],
    }


@router.post("/chat", response_model=None)
async def chat(body: ChatRequest, request: Request, _principal: Principal = Operator) -> Any:
    """The last user message is a goal; the reply is its report."""
    wf = workforce(request)
    agent = work.agent_of(wf.settings, body.model, tags=True)
    if not body.messages:  # how Ollama clients load a model: nothing to do
        return {
            "model": body.model,
            "created_at": _now(),
            "done": True,
            "done_reason": "load",
            "message": {"role": "assistant", "content": ""},
        }
    goal = work.goal_of([m.model_dump() for m in body.messages])
    run_id = await work.submit(wf, goal, agent)

    def part(text: str) -> dict[str, Any]:
        return {"message": {"role": "assistant", "content": text}}

    return await _answer(wf, run_id, body.model, body.stream, part)


@router.post("/generate", response_model=None)
async def generate(
    body: GenerateRequest, request: Request, _principal: Principal = Operator
) -> Any:
    """The prompt is a goal; the response is its report."""
    wf = workforce(request)
    agent = work.agent_of(wf.settings, body.model, tags=True)
    if not body.prompt.strip():  # how Ollama clients load a model: nothing to do
        return {
            "model": body.model,
            "created_at": _now(),
            "response": "",
            "done": True,
            "done_reason": "load",
        }
    run_id = await work.submit(wf, work.goal_of([{"role": "user", "content": body.prompt}]), agent)
    return await _answer(wf, run_id, body.model, body.stream, lambda text: {"response": text})


async def _answer(
    wf: Any, run_id: str, model: str, stream: bool, part: Callable[[str], dict[str, Any]]
) -> Any:
    started = time.monotonic_ns()
    if stream:
        return StreamingResponse(
            _lines(wf, run_id, model, part, started),
            media_type="application/x-ndjson",
            headers={"X-OpenLAM-Run": run_id},
        )
    reply = None
    async for item in work.drive(wf, run_id):
        if isinstance(item, work.Reply):
            reply = item
    assert reply is not None
    return {"model": model, "created_at": _now(), **part(reply.text), **_done(reply, started)}


def _done(reply: work.Reply, started: int) -> dict[str, Any]:
    u = reply.usage
    return {
        "done": True,
        "done_reason": "stop",
        "total_duration": time.monotonic_ns() - started,
        "load_duration": 0,
        "prompt_eval_count": u.input_tokens,
        "prompt_eval_duration": 0,
        "eval_count": u.output_tokens,
        "eval_duration": 0,
    }


async def _lines(
    wf: Any, run_id: str, model: str, part: Callable[[str], dict[str, Any]], started: int
) -> AsyncIterator[str]:
    def line(data: dict[str, Any]) -> str:
        return json.dumps({"model": model, "created_at": _now(), **data}, ensure_ascii=False) + "\n"

    try:
        async for item in work.drive(wf, run_id):
            if isinstance(item, work.Reply):
                yield line({**part(item.text), "done": False})
                yield line({**part(""), **_done(item, started)})
            else:
                yield line({**part(item + "\n"), "done": False})
    except Exception as exc:  # the status line is sent: say it in the stream, as Ollama does
        log.exception("streaming run %s failed", run_id)
        yield json.dumps(ollama_body(stream_error(exc))) + "\n"
