"""Model resolution order: flag → openlam.toml → OPENLAM_MODEL → local Ollama → offline."""

from __future__ import annotations

import pytest

from openlam.config import load_settings
from openlam.errors import UserError
from openlam.models.resolve import choose_model
from tests.fakes.model_servers import FakeOllama


def test_order(workspace, monkeypatch):
    monkeypatch.delenv("OPENLAM_MODEL", raising=False)
    with FakeOllama([], model="llama3.2:3b") as ollama:
        monkeypatch.setenv("OPENLAM_OLLAMA_URL", ollama.url)
        assert choose_model(load_settings(workspace)).spec == "ollama:llama3.2:3b"
        monkeypatch.setenv("OPENLAM_MODEL", "openai:from-env")
        assert choose_model(load_settings(workspace)).spec == "openai:from-env"
        (workspace / "openlam.toml").write_text('[openlam]\nmodel = "anthropic:from-config"\n')
        chosen = choose_model(load_settings(workspace))
        assert (chosen.spec, chosen.source) == ("anthropic:from-config", "config")
        assert choose_model(load_settings(workspace), "ollama:flag").source == "flag"


def test_offline_when_nothing_answers(workspace, monkeypatch):
    monkeypatch.delenv("OPENLAM_MODEL", raising=False)
    monkeypatch.setenv("OPENLAM_OLLAMA_URL", "http://127.0.0.1:9")
    assert choose_model(load_settings(workspace)).spec == "offline"


def test_malformed_spec_is_a_user_error(workspace):
    with pytest.raises(UserError, match="PROVIDER:NAME"):
        choose_model(load_settings(workspace), "mistral")
