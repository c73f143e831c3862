"""A pydantic-ai model that speaks Ollama's native ``/api/chat``.

pydantic-ai's own ``ollama:`` model uses Ollama's OpenAI-compatible endpoint; the native
endpoint is used here because its ``format`` field takes a JSON schema that Ollama
enforces with a grammar while decoding, which is what lets small local models emit
valid plans.
"""

from __future__ import annotations

from typing import Any

import httpx
from pydantic_ai.exceptions import ModelHTTPError
from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    ModelResponsePart,
    RetryPromptPart,
    SystemPromptPart,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)
from pydantic_ai.models import Model, ModelRequestParameters
from pydantic_ai.profiles import ModelProfile
from pydantic_ai.settings import ModelSettings
from pydantic_ai.usage import RequestUsage

from openlam.config import DEFAULT_MODEL_TIMEOUT
from openlam.errors import ModelError
from openlam.models.ollama_probe import ollama_reachable  # noqa: F401 (its old home)

OLLAMA_PROFILE = ModelProfile(
    supports_tools=True,
    supports_json_schema_output=True,
    supports_json_object_output=True,
    default_structured_output_mode="native",
)


class OllamaChatModel(Model):
    """``timeout``: seconds for one request, retries included (:func:`openlam.models.request`)."""

    def __init__(
        self,
        model_name: str,
        base_url: str = "http://127.0.0.1:11434",
        timeout: float = DEFAULT_MODEL_TIMEOUT,
    ) -> None:
        super().__init__(settings=ModelSettings(request_timeout=timeout), profile=OLLAMA_PROFILE)
        self._model_name = model_name
        self._base_url = base_url.rstrip("/")
        self._client = httpx.AsyncClient(
            base_url=self._base_url, timeout=httpx.Timeout(timeout, connect=5.0)
        )

    @property
    def model_name(self) -> str:
        return self._model_name

    @property
    def system(self) -> str:
        return "ollama"

    @property
    def base_url(self) -> str:
        return self._base_url

    async def request(
        self,
        messages: list[ModelMessage],
        model_settings: ModelSettings | None,
        model_request_parameters: ModelRequestParameters,
    ) -> ModelResponse:
        model_settings, params = self.prepare_request(model_settings, model_request_parameters)
        body: dict[str, Any] = {
            "model": self._model_name,
            "stream": False,
            "messages": _to_ollama(messages),
        }
        if params.output_mode == "native" and params.output_object is not None:
            body["format"] = params.output_object.json_schema
        tools = [*params.function_tools, *params.output_tools]
        if tools:
            body["tools"] = [
                {
                    "type": "function",
                    "function": {
                        "name": t.name,
                        "description": t.description or "",
                        "parameters": t.parameters_json_schema,
                    },
                }
                for t in tools
            ]
        options = {
            k: v for k, v in (model_settings or {}).items() if k in ("temperature", "top_p", "seed")
        }
        if options:
            body["options"] = options
        # Transport errors and HTTP statuses go to models.request, which retries the
        # transient ones within the request's deadline and names the server.
        response = await self._client.post("/api/chat", json=body)
        if response.status_code != 200:
            raise ModelHTTPError(response.status_code, self._model_name, _error_text(response))
        try:
            data = response.json()
            message = data["message"]
        except (ValueError, KeyError, TypeError) as exc:
            raise ModelError(f"Ollama sent an unreadable reply: {response.text[:300]}") from exc
        parts: list[ModelResponsePart] = []
        if message.get("content"):
            parts.append(TextPart(content=message["content"]))
        for i, call in enumerate(message.get("tool_calls") or []):
            fn = call.get("function", {})
            parts.append(
                ToolCallPart(
                    tool_name=fn.get("name", ""),
                    args=fn.get("arguments") or {},
                    tool_call_id=call.get("id") or f"call_{i}",
                )
            )
        return ModelResponse(
            parts=parts,
            usage=RequestUsage(
                input_tokens=int(data.get("prompt_eval_count") or 0),
                output_tokens=int(data.get("eval_count") or 0),
            ),
            model_name=data.get("model", self._model_name),
        )


def _error_text(response: httpx.Response) -> str:
    """Ollama's ``{"error": "..."}``, or the start of whatever else it sent."""
    try:
        return str(response.json()["error"])[:300]
    except (ValueError, KeyError, TypeError):
        return response.text[:300]


def _to_ollama(messages: list[ModelMessage]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for message in messages:
        if isinstance(message, ModelRequest):
            if message.instructions:
                out.append({"role": "system", "content": message.instructions})
            for part in message.parts:
                if isinstance(part, SystemPromptPart):
                    out.append({"role": "system", "content": part.content})
                elif isinstance(part, UserPromptPart):
                    content = part.content if isinstance(part.content, str) else str(part.content)
                    out.append({"role": "user", "content": content})
                elif isinstance(part, ToolReturnPart):
                    out.append(
                        {
                            "role": "tool",
                            "tool_name": part.tool_name,
                            "content": part.model_response_str(),
                        }
                    )
                elif isinstance(part, RetryPromptPart):
                    out.append({"role": "user", "content": part.model_response()})
        elif isinstance(message, ModelResponse):
            entry: dict[str, Any] = {"role": "assistant", "content": ""}
            for part in message.parts:
                if isinstance(part, TextPart):
                    entry["content"] += part.content
                elif isinstance(part, ToolCallPart):
                    entry.setdefault("tool_calls", []).append(
                        {"function": {"name": part.tool_name, "arguments": part.args_as_dict()}}
                    )
            out.append(entry)
    return out
