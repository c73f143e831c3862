"""The model layer: one ``request`` over every provider, through pydantic-ai."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from openlam.errors import ModelError

if TYPE_CHECKING:
    from pydantic_ai.models import Model

_registered: dict[str, Model] = {}


@dataclass
class ModelReply:
    text: str
    input_tokens: int = 0
    output_tokens: int = 0


def register_model(name: str, model: Model) -> None:
    """Make an in-process model (e.g. pydantic-ai's FunctionModel) reachable by name."""
    _registered[name] = model


def registered_model(name: str) -> Model | None:
    return _registered.get(name)


async def request(model: Model, messages: list[dict[str, str]],
                  schema: dict[str, Any] | None = None, *, attempts: int = 3) -> ModelReply:
    """Send chat ``messages`` ({role, content}) and return the text of the reply.

    With ``schema``, a backend that supports it constrains its output to the schema
    (OpenAI ``response_format``, Ollama ``format``). Transient failures are retried.
    """
    from pydantic_ai.direct import model_request
    from pydantic_ai.messages import ModelResponse, TextPart, ToolCallPart
    from pydantic_ai.models import ModelRequestParameters
    from pydantic_ai.output import OutputObjectDefinition

    params = ModelRequestParameters()
    if schema is not None and model.profile.get("supports_json_schema_output", False):
        params = ModelRequestParameters(
            output_mode="native", allow_text_output=True,
            output_object=OutputObjectDefinition(json_schema=schema, name="plan", strict=False),
        )
    history = _to_messages(messages)
    response: ModelResponse | None = None
    for attempt in range(1, attempts + 1):
        try:
            response = await model_request(model, history, model_request_parameters=params)
            break
        except ModelError:
            raise
        except Exception as exc:  # every provider has its own exception types
            if attempt == attempts or not _transient(exc):
                raise ModelError(_explain(exc)) from exc
            await asyncio.sleep(0.2 * 2 ** attempt)
    assert response is not None  # the loop either broke with a response or raised
    text = "".join(p.content for p in response.parts if isinstance(p, TextPart))
    if not text:  # some backends answer a structured request with a tool call
        import json

        calls = [p.args_as_dict() for p in response.parts if isinstance(p, ToolCallPart)]
        text = json.dumps(calls[0]) if calls else ""
    return ModelReply(text=text, input_tokens=response.usage.input_tokens or 0,
                      output_tokens=response.usage.output_tokens or 0)


def _to_messages(messages: list[dict[str, str]]) -> list[Any]:
    from pydantic_ai.messages import (
        ModelRequest,
        ModelResponse,
        SystemPromptPart,
        TextPart,
        UserPromptPart,
    )

    out: list[Any] = []
    pending: list[Any] = []
    for m in messages:
        if m["role"] == "assistant":
            if pending:
                out.append(ModelRequest(parts=pending))
                pending = []
            out.append(ModelResponse(parts=[TextPart(content=m["content"])]))
        elif m["role"] == "system":
            pending.append(SystemPromptPart(content=m["content"]))
        else:
            pending.append(UserPromptPart(content=m["content"]))
    if pending:
        out.append(ModelRequest(parts=pending))
    return out


def _transient(exc: Exception) -> bool:
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        return status == 429 or status >= 500
    name = type(exc).__name__.lower()
    return any(word in name for word in ("timeout", "connect", "network", "transport"))


def _explain(exc: Exception) -> str:
    status = getattr(exc, "status_code", None)
    body = getattr(exc, "body", None)
    if status:
        return f"the model server answered HTTP {status}: {str(body or exc)[:300]}"
    return f"the model could not be reached: {type(exc).__name__}: {str(exc)[:300]}"
