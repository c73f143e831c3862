"""Fake model servers that speak the real wire protocols over HTTP.

* Ollama: ``GET /api/tags``, ``POST /api/chat`` (messages, ``format`` schema, ``tools``).
* OpenAI-compatible: ``GET /v1/models``, ``POST /v1/chat/completions``.

A script decides each reply: a list of replies in order, or a function of the request
body. A reply is a plan dict (sent as JSON text), raw text, ``{"tool_call": {"name": ...,
"arguments": {...}}}`` (a function call, in either protocol's form), or
``{"http_status": 500, "message": "..."}`` for an error in the server's own format.
``latency`` holds each reply back that many seconds, or until the server stops: a large
one makes a server that accepts requests and never answers them.
Token usage is estimated as characters / 4 of what the request carries (messages,
plus the schema and tools), and reported the way each server reports it.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from tests.fakes.http import FakeHTTPServer, Response, json_response

Script = Sequence[Any] | Callable[[dict[str, Any]], Any]


class FakeModelServer(FakeHTTPServer):
    def __init__(self, script: Script, *, latency: float = 0.0, model: str = "fake-planner"):
        self.script = script
        self.latency = latency
        self.model = model
        self.chat_bodies: list[dict[str, Any]] = []
        self.prompt_tokens = 0
        self.stopping = threading.Event()
        super().__init__(self._handle)

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()  # let held replies go, so the server can stop
        super().__exit__(*exc)

    def hold(self) -> None:
        if self.latency:
            self.stopping.wait(self.latency)

    def next_reply(self, body: dict[str, Any]) -> Any:
        self.chat_bodies.append(body)
        if callable(self.script):
            return self.script(body)
        index = len(self.chat_bodies) - 1
        return self.script[index] if index < len(self.script) else {"steps": []}

    def tokens_in(self, body: dict[str, Any]) -> int:
        carried = json.dumps(
            [
                body.get("messages"),
                body.get("format"),
                body.get("response_format"),
                body.get("tools"),
            ]
        )
        n = len(carried) // 4
        self.prompt_tokens += n
        return n

    @property
    def chat_requests(self) -> int:
        return len(self.chat_bodies)

    def _handle(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> Response:
        raise NotImplementedError


def _text(reply: Any) -> str:
    return reply if isinstance(reply, str) else json.dumps(reply)


class FakeOllama(FakeModelServer):
    def _handle(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> Response:
        if method == "GET" and path == "/api/tags":
            return json_response({"models": [{"name": self.model, "size": 1}]})
        if method == "POST" and path == "/api/chat":
            body = json.loads(raw)
            reply = self.next_reply(body)
            self.hold()
            if isinstance(reply, dict) and "http_status" in reply:
                return json_response({"error": reply.get("message", "boom")}, reply["http_status"])
            message: dict[str, Any] = {"role": "assistant", "content": ""}
            done = "stop"
            if isinstance(reply, dict) and "tool_call" in reply:
                message["tool_calls"] = [{"function": reply["tool_call"]}]
            elif isinstance(reply, dict) and "cut_off" in reply:  # stopped at the limit
                message["content"], done = reply["cut_off"], "length"
            else:
                message["content"] = _text(reply)
            return json_response(
                {
                    "model": body.get("model", self.model),
                    "created_at": "2026-11-28T00:00:00Z",
                    "message": message,
                    "done": True,
                    "done_reason": done,
                    "prompt_eval_count": self.tokens_in(body),
                    "eval_count": len(message["content"]) // 4,
                }
            )
        return json_response({"error": f"no route {method} {path}"}, 404)


class FakeOpenAI(FakeModelServer):
    def _handle(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> Response:
        if method == "GET" and path == "/v1/models":
            return json_response(
                {
                    "object": "list",
                    "data": [
                        {"id": self.model, "object": "model", "created": 0, "owned_by": "test"}
                    ],
                }
            )
        if method == "POST" and path == "/v1/chat/completions":
            body = json.loads(raw)
            reply = self.next_reply(body)
            self.hold()
            if isinstance(reply, dict) and "http_status" in reply:
                return json_response(
                    {"error": {"message": reply.get("message", "boom"), "type": "server_error"}},
                    reply["http_status"],
                )
            message: dict[str, Any] = {"role": "assistant", "content": None}
            finish = "stop"
            if isinstance(reply, dict) and "tool_call" in reply:
                call = reply["tool_call"]
                message["tool_calls"] = [
                    {
                        "id": f"call_{len(self.chat_bodies)}",
                        "type": "function",
                        "function": {
                            "name": call["name"],
                            "arguments": json.dumps(call.get("arguments", {})),
                        },
                    }
                ]
                finish, content = "tool_calls", ""
            elif isinstance(reply, dict) and "cut_off" in reply:  # stopped at the limit
                content = message["content"] = reply["cut_off"]
                finish = "length"
            else:
                content = message["content"] = _text(reply)
            n_in = self.tokens_in(body)
            return json_response(
                {
                    "id": f"chatcmpl-{len(self.chat_bodies)}",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": body.get("model", self.model),
                    "choices": [{"index": 0, "finish_reason": finish, "message": message}],
                    "usage": {
                        "prompt_tokens": n_in,
                        "completion_tokens": len(content) // 4,
                        "total_tokens": n_in + len(content) // 4,
                    },
                }
            )
        return json_response({"error": {"message": f"no route {method} {path}"}}, 404)


class FakeAnthropic(FakeModelServer):
    """Anthropic's Messages API: ``POST /v1/messages``."""

    def _handle(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> Response:
        if method == "POST" and path.startswith("/v1/messages"):
            body = json.loads(raw)
            if "test-key" not in (headers.get("x-api-key"), headers.get("authorization", "")[7:]):
                return json_response(
                    {
                        "type": "error",
                        "error": {"type": "authentication_error", "message": "invalid x-api-key"},
                    },
                    401,
                )
            reply = self.next_reply(body)
            self.hold()
            content = _text(reply)
            n_in = self.tokens_in(
                {"messages": [body.get("system"), body.get("messages")], "tools": body.get("tools")}
            )
            return json_response(
                {
                    "id": f"msg_{len(self.chat_bodies)}",
                    "type": "message",
                    "role": "assistant",
                    "model": body.get("model", self.model),
                    "content": [{"type": "text", "text": content}],
                    "stop_reason": "end_turn",
                    "stop_sequence": None,
                    "usage": {"input_tokens": n_in, "output_tokens": len(content) // 4},
                }
            )
        return json_response(
            {"type": "error", "error": {"type": "not_found_error", "message": path}}, 404
        )
