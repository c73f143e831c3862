"""The model layer: one ``request`` over every provider.

OpenAI-compatible servers and Ollama are spoken to directly (:mod:`openlam.models.direct`);
every other model — Anthropic, a pydantic-ai ``Model`` of the user's, the test models —
through pydantic-ai.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from openlam.config import DEFAULT_MODEL_TIMEOUT
from openlam.errors import ModelError
from openlam.loop.overhead import working
from openlam.models.reply import ModelReply

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from pydantic_ai.models import Model as PydanticAIModel

    from openlam.models.direct import DirectModel

    Model = DirectModel | PydanticAIModel

MAX_ATTEMPTS = 3  # per request, and only while its deadline allows
_registered: dict[str, Model] = {}


def register_model(name: str, model: Model) -> None:
    """Make an in-process model (e.g. pydantic-ai's FunctionModel) reachable by name."""
    _registered[name] = model


def registered_model(name: str) -> Model | None:
    return _registered.get(name)


async def request(
    model: Model,
    messages: list[dict[str, str]],
    schema: dict[str, Any] | None = None,
    *,
    timeout: float | None = None,
) -> ModelReply:
    """Send chat ``messages`` ({role, content}) and return the text of the reply.

    With ``schema``, a backend that supports it constrains its output to the schema
    (OpenAI ``response_format``, Ollama ``format``). The whole request — every attempt and
    the pauses between them — ends within ``timeout`` seconds (default: the model's
    ``request_timeout`` setting, which :func:`~openlam.models.resolve.build_model` takes
    from ``model_timeout``); transient failures are retried only while time remains.
    Every failure is a :class:`ModelError` that names the model, its server and the
    setting to change.
    """
    from openlam.models.direct import DirectModel

    if isinstance(model, DirectModel):
        direct = model

        def attempt() -> Awaitable[ModelReply]:
            return direct.chat(messages, schema)
    else:
        attempt = _through_pydantic_ai(model, messages, schema)
    limit = timeout or timeout_of(model)
    try:
        async with asyncio.timeout(limit):
            with working():  # the model's time, not the run's overhead
                return await _with_retries(model, attempt)
    except TimeoutError:
        raise ModelError(
            f"{_where(model)} did not answer within {limit:g} s; a slow model "
            "needs a larger model_timeout ([openlam] model_timeout in "
            "openlam.toml, or OPENLAM_MODEL_TIMEOUT)"
        ) from None


def timeout_of(model: Model) -> float:
    """The seconds one request to ``model`` may take, retries included."""
    value = (model.settings or {}).get("request_timeout")
    return float(value) if value else DEFAULT_MODEL_TIMEOUT


def _through_pydantic_ai(
    model: PydanticAIModel, messages: list[dict[str, str]], schema: dict[str, Any] | None
) -> Callable[[], Awaitable[ModelReply]]:
    """One attempt of the request as pydantic-ai's direct ``model_request``."""
    from pydantic_ai.direct import model_request
    from pydantic_ai.models import ModelRequestParameters
    from pydantic_ai.output import OutputObjectDefinition

    params = ModelRequestParameters()
    if schema is not None and model.profile.get("supports_json_schema_output", False):
        params = ModelRequestParameters(
            output_mode="native",
            allow_text_output=True,
            output_object=OutputObjectDefinition(json_schema=schema, name="plan", strict=False),
        )
    history = _to_messages(messages)

    async def attempt() -> ModelReply:
        return _reply(await model_request(model, history, model_request_parameters=params))

    return attempt


async def _with_retries(
    model: Model, attempt_once: Callable[[], Awaitable[ModelReply]]
) -> ModelReply:
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            return await attempt_once()
        except ModelError:
            raise
        except Exception as exc:  # every provider has its own exception types
            if attempt == MAX_ATTEMPTS or not _transient(exc):
                raise ModelError(_explain(model, exc)) from exc
            await asyncio.sleep(0.2 * 2**attempt)
    raise AssertionError("unreachable: the last attempt returns or raises")


def _reply(response: Any) -> ModelReply:
    from pydantic_ai.messages import TextPart, ToolCallPart

    text = "".join(p.content for p in response.parts if isinstance(p, TextPart))
    if not text:  # some backends answer a structured request with a tool call
        import json

        calls = [p.args_as_dict() for p in response.parts if isinstance(p, ToolCallPart)]
        text = json.dumps(calls[0]) if calls else ""
    return ModelReply(
        text=text,
        input_tokens=response.usage.input_tokens or 0,
        output_tokens=response.usage.output_tokens or 0,
        cut_off=getattr(response, "finish_reason", None) == "length",
    )


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
    from openlam.models.direct import Unreachable

    if isinstance(exc, Unreachable):
        return True
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        return status == 429 or status >= 500
    name = type(exc).__name__.lower()
    return any(word in name for word in ("timeout", "connect", "network", "transport"))


# The setting that says where each kind of model server is, for error messages.
SERVER_SETTING = {
    "ollama": "the ollama_url setting (OPENLAM_OLLAMA_URL)",
    "openai": "the openai_base_url setting (OPENLAM_OPENAI_BASE_URL)",
}
CHOOSE_ANOTHER = "or choose another model with --model or OPENLAM_MODEL (--model offline uses none)"


def _where(model: Model) -> str:
    at = f" at {model.base_url}" if model.base_url else ""
    return f"the model {model.system}:{model.model_name}{at}"


def _explain(model: Model, exc: Exception) -> str:
    status = getattr(exc, "status_code", None)
    if status:
        body = getattr(exc, "body", None) or exc
        return (
            f"{_where(model)} answered HTTP {status}: {str(body)[:300]}; check the server, "
            f"{CHOOSE_ANOTHER}"
        )
    cause = f"{type(exc).__name__}: {str(exc)[:300]}"
    if not _transient(exc):
        return f"{_where(model)} failed ({cause}); {CHOOSE_ANOTHER.removeprefix('or ')}"
    setting = SERVER_SETTING.get(model.system, "its address")
    return (
        f"{_where(model)} could not be reached ({cause}); check that the server runs "
        f"and {setting}, {CHOOSE_ANOTHER}"
    )
