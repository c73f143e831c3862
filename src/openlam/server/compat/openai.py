"""An OpenAI-compatible API: the workforce answers as the model ``openlam``.

``POST /v1/chat/completions`` takes the last user message as a goal, queues it, and
answers with the run's honest report — at once in one body, or as it happens
(``stream: true``: server-sent ``chat.completion.chunk`` events, a line per step, the
report, then ``data: [DONE]``). ``GET /v1/models`` lists ``openlam`` and
``openlam/<agent-id>`` for every agent. Any OpenAI client works: its API key is an
OpenLAM token (operator role to submit).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from openlam.server.api.common import Operator, Viewer, workforce
from openlam.server.auth import Principal
from openlam.server.compat import work
from openlam.server.compat.errors import OpenAIRoute, openai_body, stream_error

log = logging.getLogger("openlam.server")
router = APIRouter(prefix="/v1", tags=["openai-compatible"], route_class=OpenAIRoute)
CREATED = int(time.time())  # the "created" of every model: when this server started


class Message(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: str = Field(max_length=32)
    content: str | list[dict[str, Any]] | None = None


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")
    include_usage: bool = False


class ChatRequest(BaseModel):
    """OpenAI's chat request; sampling options (temperature, …) are accepted and have
    no effect: the workforce's own model settings apply."""

    model_config = ConfigDict(extra="allow")
    model: str = Field(max_length=256, description="openlam or openlam/<agent-id>.")
    messages: Annotated[list[Message], Field(min_length=1, max_length=1000)]
    stream: bool = False
    stream_options: StreamOptions | None = None


def _model(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": CREATED, "owned_by": "openlam"}


@router.get("/models")
async def list_models(request: Request, _principal: Principal = Viewer) -> dict[str, Any]:
    """``openlam`` (the general operator) and ``openlam/<agent-id>`` for every agent."""
    names = work.model_names(request.app.state.settings)
    return {"object": "list", "data": [_model(n) for n in names]}


@router.get("/models/{model:path}")
async def show_model(
    model: str, request: Request, _principal: Principal = Viewer
) -> dict[str, Any]:
    work.agent_of(request.app.state.settings, model)
    return _model(model)


@router.post("/chat/completions", response_model=None)
async def chat_completions(
    body: ChatRequest, request: Request, _principal: Principal = Operator
) -> Any:
    """The last user message is a goal: it is queued, and the reply is its report (or
    the approvals it waits for, with their ids)."""
    wf = workforce(request)
    agent = work.agent_of(wf.settings, body.model)
    goal = work.goal_of([m.model_dump() for m in body.messages])
    run_id = await work.submit(wf, goal, agent)
    completion_id = f"chatcmpl-{run_id}"
    if body.stream:
        usage = bool(body.stream_options and body.stream_options.include_usage)
        return StreamingResponse(
            _chunks(wf, run_id, completion_id, body.model, usage),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-OpenLAM-Run": run_id},
        )
    reply = None
    async for item in work.drive(wf, run_id):
        if isinstance(item, work.Reply):
            reply = item
    assert reply is not None
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.model,
        "system_fingerprint": None,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": reply.text, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": _usage(reply),
    }


def _usage(reply: work.Reply) -> dict[str, int]:
    u = reply.usage
    return {
        "prompt_tokens": u.input_tokens,
        "completion_tokens": u.output_tokens,
        "total_tokens": u.input_tokens + u.output_tokens,
    }


async def _chunks(
    wf: Any, run_id: str, completion_id: str, model: str, include_usage: bool
) -> AsyncIterator[str]:
    created = int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        data = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": None,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
            **extra,
        }
        return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"

    yield chunk({"role": "assistant", "content": ""})
    try:
        async for item in work.drive(wf, run_id):
            if isinstance(item, work.Reply):
                yield chunk({"content": "\n" + item.text})
                yield chunk({}, "stop")
                if include_usage:
                    data = {
                        "id": completion_id,
                        "object": "chat.completion.chunk",
                        "created": created,
                        "model": model,
                        "choices": [],
                        "usage": _usage(item),
                    }
                    yield f"data: {json.dumps(data)}\n\n"
            else:
                yield chunk({"content": item + "\n"})
    except Exception as exc:  # the status line is sent: say it in the stream
        log.exception("streaming run %s failed", run_id)
        yield f"data: {json.dumps(openai_body(stream_error(exc)))}\n\n"
    yield "data: [DONE]\n\n"
