"""Models reached over their own HTTP API: OpenAI-compatible chat completions and
Ollama's native ``/api/chat``.

A run asks its model for one thing — chat messages in, text (a plan) out, optionally
constrained to a JSON schema — so these two wire protocols are spoken here with httpx
rather than through pydantic-ai's OpenAI model and the OpenAI SDK under it. For that
one request the SDK cost about a quarter of a run's CPU (its request transform and
response models), and importing pydantic-ai with it ≈ 1.4 s and ≈ 90 MB before the
first request (bench/README.md, "Cost per run"). Every other model — Anthropic, a
user's own pydantic-ai ``Model``, the test models — still goes through pydantic-ai
(:func:`openlam.models.request` tells them apart).

Ollama's native endpoint rather than its OpenAI-compatible one: its ``format`` field
takes a JSON schema that Ollama enforces with a grammar while decoding, which is what
lets small local models emit valid plans.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

from openlam.config import DEFAULT_MODEL_TIMEOUT
from openlam.errors import ModelError
from openlam.models.reply import ModelReply

if TYPE_CHECKING:
    import httpx


DEFAULT_OPENAI_URL = "https://api.openai.com/v1"
MAX_REPLY_BYTES = 16 * 1024 * 1024  # a plan is kilobytes: more is a server misbehaving


class ServerAnswered(Exception):
    """The model server answered with an error status (``status_code``, its message)."""

    def __init__(self, status_code: int, body: str) -> None:
        super().__init__(f"HTTP {status_code}: {body}")
        self.status_code = status_code
        self.body = body


class Unreachable(Exception):
    """The request did not get an answer (refused, reset, timed out): worth a retry."""


class DirectModel(ABC):
    """A chat model spoken to over HTTP; the attributes are those of a pydantic-ai
    ``Model`` that :mod:`openlam.models` reads (``system``, ``model_name``,
    ``base_url``, ``settings``, ``profile``).

    ``timeout``: seconds for one request, retries included (:func:`openlam.models.request`).
    """

    system: ClassVar[str]
    path: ClassVar[str]

    def __init__(
        self,
        model_name: str,
        base_url: str,
        timeout: float = DEFAULT_MODEL_TIMEOUT,
        headers: dict[str, str] | None = None,
    ) -> None:
        import httpx

        self.model_name = model_name
        self.base_url = base_url.rstrip("/")
        self.settings: dict[str, Any] = {"request_timeout": timeout}
        self.profile: dict[str, Any] = {"supports_json_schema_output": True}
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=httpx.Timeout(timeout, connect=min(5.0, timeout)),
            headers=headers,
        )

    async def chat(
        self, messages: list[dict[str, str]], schema: dict[str, Any] | None
    ) -> ModelReply:
        """One request: the reply's text and token counts."""
        import httpx

        try:
            async with self._client.stream(
                "POST", self.path, json=self.body(messages, schema)
            ) as response:
                status, raw = response.status_code, await self._read(response)
                encoding = response.encoding or "utf-8"
        except httpx.TransportError as exc:
            raise Unreachable(f"{type(exc).__name__}: {exc}") from exc
        if status != 200:
            raise ServerAnswered(status, error_text(raw.decode(encoding, errors="replace")))
        try:
            return self.reply(json.loads(raw))
        except (ValueError, KeyError, TypeError, IndexError, AttributeError, RecursionError) as exc:
            raise ModelError(
                f"the model {self.system}:{self.model_name} at {self.base_url} sent an "
                f"unreadable reply: {raw[:300].decode(encoding, errors='replace')}"
            ) from exc

    async def _read(self, response: httpx.Response) -> bytes:
        """The reply's body, refused past MAX_REPLY_BYTES (memory is not the server's)."""
        from openlam.actions.httpkit import read_body
        from openlam.errors import ActionError

        try:
            return await read_body(response, max_bytes=MAX_REPLY_BYTES, what="the model")
        except ActionError:
            raise ModelError(
                f"the model {self.system}:{self.model_name} at {self.base_url} sent a "
                f"reply larger than {MAX_REPLY_BYTES / 2**20:g} MiB (a plan is a few "
                "kilobytes); check the server, or a proxy between it and OpenLAM"
            ) from None

    @abstractmethod
    def body(self, messages: list[dict[str, str]], schema: dict[str, Any] | None) -> dict[str, Any]:
        """The request's JSON in this server's protocol."""

    @abstractmethod
    def reply(self, data: dict[str, Any]) -> ModelReply:
        """The reply's text and token counts from the server's JSON answer."""


class OpenAICompatibleModel(DirectModel):
    """``POST {base_url}/chat/completions``: OpenAI and every server that speaks its API
    (vLLM, llama.cpp, LM Studio, LiteLLM, OpenLAM's own compat endpoint …)."""

    system = "openai"
    path = "/chat/completions"

    def __init__(
        self,
        model_name: str,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float = DEFAULT_MODEL_TIMEOUT,
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else None
        super().__init__(model_name, base_url or DEFAULT_OPENAI_URL, timeout, headers)

    def body(self, messages: list[dict[str, str]], schema: dict[str, Any] | None) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model_name, "messages": messages}
        if schema is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "plan", "schema": schema},
            }
        return body

    def reply(self, data: dict[str, Any]) -> ModelReply:

        usage = data.get("usage") or {}
        choice = data["choices"][0]
        return ModelReply(
            text=_text_of(choice["message"]),
            input_tokens=int(usage.get("prompt_tokens") or 0),
            output_tokens=int(usage.get("completion_tokens") or 0),
            cut_off=choice.get("finish_reason") == "length",
        )


class OllamaChatModel(DirectModel):
    """``POST {base_url}/api/chat`` of a local (or remote) Ollama."""

    system = "ollama"
    path = "/api/chat"

    def __init__(
        self,
        model_name: str,
        base_url: str = "http://127.0.0.1:11434",
        timeout: float = DEFAULT_MODEL_TIMEOUT,
    ) -> None:
        super().__init__(model_name, base_url, timeout)

    def body(self, messages: list[dict[str, str]], schema: dict[str, Any] | None) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model_name, "stream": False, "messages": messages}
        if schema is not None:
            body["format"] = schema
        return body

    def reply(self, data: dict[str, Any]) -> ModelReply:

        return ModelReply(
            text=_text_of(data["message"]),
            input_tokens=int(data.get("prompt_eval_count") or 0),
            output_tokens=int(data.get("eval_count") or 0),
            cut_off=data.get("done_reason") == "length",
        )


def error_text(text: str) -> str:
    """The server's own error message, or the start of whatever it sent."""
    try:
        error = json.loads(text)["error"]
    except (ValueError, KeyError, TypeError, IndexError, RecursionError):
        return text[:300]
    if isinstance(error, dict):  # OpenAI's {"error": {"message": ...}}
        error = error.get("message") or error
    return str(error)[:300]


def _text_of(message: dict[str, Any]) -> str:
    """An assistant message's text; some servers answer a structured request with a tool
    call instead, whose arguments are then the text (OpenAI sends them as a string,
    Ollama as an object). Content given as parts (``[{"type": "text", "text": …}]``, as
    some OpenAI-compatible servers send it) is their text joined."""
    text = message.get("content") or ""
    if isinstance(text, list):
        text = "".join(p.get("text") or "" for p in text if isinstance(p, dict))
    calls = message.get("tool_calls") or []
    if text or not calls:
        return text
    arguments = calls[0]["function"].get("arguments")
    return arguments if isinstance(arguments, str) else json.dumps(arguments or {})
