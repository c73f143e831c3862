"""Which model serves a run.

Order (README, "Connect a model"): explicit flag → ``openlam.toml`` → ``OPENLAM_MODEL`` → a local
Ollama answering on 127.0.0.1:11434 → the offline planner.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from openlam.config import Settings
from openlam.errors import UserError
from openlam.models import registered_model

if TYPE_CHECKING:
    from openlam.models import Model

OFFLINE = "offline"
PROVIDERS = ("ollama", "openai", "anthropic", "test")
CONNECT_HINT = (
    "connect a model: start Ollama (`ollama serve`, then `ollama pull qwen3`), or pass "
    "--model openai:NAME with OPENLAM_OPENAI_BASE_URL/OPENAI_API_KEY set, or --model "
    "anthropic:NAME with ANTHROPIC_API_KEY set (or set OPENLAM_MODEL)"
)


@dataclass(frozen=True)
class ModelChoice:
    spec: str
    source: str  # flag | config | env | ollama | offline


def choose_model(settings: Settings, flag: str | None = None) -> ModelChoice:
    if flag:
        return ModelChoice(_check(flag, "--model"), "flag")
    configured = settings.raw.get("openlam", settings.raw).get("model")
    if configured:
        return ModelChoice(_check(str(configured), "openlam.toml"), "config")
    if os.environ.get("OPENLAM_MODEL"):
        return ModelChoice(_check(os.environ["OPENLAM_MODEL"], "OPENLAM_MODEL"), "env")
    from openlam.models.ollama_probe import ollama_reachable

    names = ollama_reachable(settings.ollama_url)
    if names:
        return ModelChoice(f"ollama:{names[0]}", "ollama")
    return ModelChoice(OFFLINE, "offline")


def _check(spec: str, where: str) -> str:
    provider, _, name = spec.partition(":")
    if spec == OFFLINE or registered_model(spec) is not None:
        return spec
    if provider not in PROVIDERS or not name:
        raise UserError(
            f"model {spec!r} (from {where}) is not of the form PROVIDER:NAME",
            "use ollama:NAME, openai:NAME, anthropic:NAME or offline",
        )
    return spec


def build_model(spec: str, settings: Settings) -> Model:
    """The model for a spec; cached per process."""
    return _build(
        spec,
        settings.ollama_url,
        settings.openai_base_url,
        settings.openai_api_key,
        settings.model_timeout,
    )


@lru_cache(maxsize=32)
def _build(
    spec: str, ollama_url: str, openai_base_url: str | None, openai_key: str | None, timeout: float
) -> Model:
    found = registered_model(spec)
    if found is not None:
        return found
    # `timeout` bounds a whole request, retries included (models.request); each HTTP
    # attempt gets the same bound.
    provider, _, name = spec.partition(":")
    if provider == "ollama":
        from openlam.models.direct import OllamaChatModel

        return OllamaChatModel(name, ollama_url, timeout=timeout)
    if provider == "openai":
        from openlam.models.direct import OpenAICompatibleModel

        if not openai_base_url and not openai_key:
            raise UserError(
                f"model {spec} needs an API key or a server",
                "set OPENAI_API_KEY, or OPENLAM_OPENAI_BASE_URL for an OpenAI-compatible server",
            )
        return OpenAICompatibleModel(name, openai_base_url, openai_key, timeout=timeout)
    if provider == "anthropic":
        if not os.environ.get("ANTHROPIC_API_KEY"):
            raise UserError(f"model {spec} needs ANTHROPIC_API_KEY", "export ANTHROPIC_API_KEY=...")
        from pydantic_ai.models.anthropic import AnthropicModel
        from pydantic_ai.settings import ModelSettings

        return AnthropicModel(
            name, settings=ModelSettings(request_timeout=timeout, timeout=timeout)
        )
    raise UserError(f"model {spec!r} is not known", "register it or use a PROVIDER:NAME spec")
