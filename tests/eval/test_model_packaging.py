"""`openlam model list|pull|create` against a fake Ollama that speaks the real API
(`/api/tags`, streamed `/api/pull`, `/api/create`, `/api/show`); the official `ollama`
Python client then sees the model `create` registered."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from openlam.cli.main import _install, app
from openlam.errors import UserError
from openlam.models.packaging import PARAMETERS, system_prompt
from tests.fakes.http import Response, json_response
from tests.fakes.model_servers import FakeOllama

ollama = pytest.importorskip("ollama")


class OllamaWithModels(FakeOllama):
    """The fake Ollama of the model tests, with a model store: pull, create, show, tags."""

    def __init__(self) -> None:
        super().__init__([])
        self.models: dict[str, dict[str, Any]] = {"qwen3:8b": {"family": "qwen3"}}
        self.api_calls: list[tuple[str, dict[str, Any]]] = []

    def _handle(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> Response:
        body = json.loads(raw) if raw else {}
        self.api_calls.append((path, body))
        if method == "GET" and path == "/api/tags":
            return json_response(
                {
                    "models": [
                        {
                            "name": n,
                            "model": n,
                            "modified_at": "2026-12-01T00:00:00Z",
                            "size": 5_000_000,
                            "digest": "sha256:" + "0" * 64,
                            "details": {"family": m.get("family", ""), "parameter_size": "8B"},
                        }
                        for n, m in self.models.items()
                    ]
                }
            )
        if method == "POST" and path == "/api/pull":
            if body["model"] == "nosuch":
                return json_response({"error": "pull model manifest: file does not exist"}, 500)
            self.models[body["model"]] = {"family": "llama"}
            lines = [
                {"status": "pulling manifest"},
                {
                    "status": "downloading",
                    "digest": "sha256:1",
                    "total": 4_000_000,
                    "completed": 2_000_000,
                },
                {
                    "status": "downloading",
                    "digest": "sha256:1",
                    "total": 4_000_000,
                    "completed": 4_000_000,
                },
                {"status": "success"},
            ]
            return (
                200,
                {"Content-Type": "application/x-ndjson"},
                "".join(json.dumps(x) + "\n" for x in lines).encode(),
            )
        if method == "POST" and path == "/api/create":
            self.models[body["model"]] = {
                "family": "qwen3",
                "system": body.get("system"),
                "parameters": body.get("parameters"),
                "from": body.get("from"),
            }
            return json_response({"status": "success"})
        if method == "POST" and path == "/api/show":
            found = self.models.get(body["model"])
            if found is None:
                return json_response({"error": f"model '{body['model']}' not found"}, 404)
            return json_response(
                {
                    "modelfile": f'FROM {found.get("from")}\nSYSTEM """{found.get("system")}"""',
                    "template": "",
                    "model_info": {},
                    "parameters": "\n".join(
                        f"{k} {v}" for k, v in (found.get("parameters") or {}).items()
                    ),
                    "details": {"family": found["family"]},
                }
            )
        return super()._handle(method, path, headers, raw)


@pytest.fixture
def server(workspace: Path) -> Any:
    with OllamaWithModels() as fake:
        (workspace / "openlam.toml").write_text(f'[openlam]\nollama_url = "{fake.url}"\n')
        yield fake


def cli(workspace: Path, *args: str) -> Any:
    _install()
    return CliRunner().invoke(app, [*args, "--workspace", str(workspace)])


def error_of(result: Any) -> str:
    """What `openlam` prints for a UserError (the runner sees the exception itself)."""
    assert isinstance(result.exception, UserError), result.output
    return str(result.exception)


def test_create_registers_openlam_and_the_ollama_client_sees_it(
    workspace: Path, server: Any
) -> None:
    result = cli(workspace, "model", "create", "qwen3:8b")
    assert result.exit_code == 0, result.output
    assert "use it with --model ollama:openlam" in result.output
    _path, sent = next(r for r in server.api_calls if r[0] == "/api/create")
    assert sent == {
        "model": "openlam",
        "from": "qwen3:8b",
        "system": system_prompt(),
        "parameters": PARAMETERS,
        "stream": False,
    }
    assert "Reply with one JSON object only" in sent["system"]  # the planning rules

    client = ollama.Client(host=server.url)
    assert "openlam" in [m.model for m in client.list().models]
    shown = client.show("openlam")
    assert system_prompt() in (shown.modelfile or "")
    assert "temperature 0" in (shown.parameters or "")
    modelfile = (workspace / ".openlam" / "Modelfile").read_text()
    assert modelfile.startswith('FROM qwen3:8b\nSYSTEM """You are the planner of OpenLAM')
    assert "PARAMETER temperature 0" in modelfile


def test_create_from_a_model_ollama_lacks_says_pull_it(workspace: Path, server: Any) -> None:
    error = error_of(cli(workspace, "model", "create", "llama3.2"))
    assert "Ollama has no model llama3.2" in error and "openlam model pull llama3.2" in error
    assert not any(p == "/api/create" for p, _ in server.api_calls)


def test_pull_shows_progress_and_list_shows_the_models(workspace: Path, server: Any) -> None:
    result = cli(workspace, "model", "pull", "llama3.2")
    assert result.exit_code == 0, result.output
    assert "pulling manifest" in result.output and "downloading: 50% of 4.0 MB" in result.output
    assert "downloading: 100% of 4.0 MB" in result.output and "success" in result.output
    listed = cli(workspace, "model", "list")
    assert "ollama:llama3.2" in listed.output and "ollama:qwen3:8b" in listed.output
    assert "Ollama refused to pull nosuch" in error_of(cli(workspace, "model", "pull", "nosuch"))


def test_no_ollama_is_a_clear_error(workspace: Path) -> None:
    (workspace / "openlam.toml").write_text('[openlam]\nollama_url = "http://127.0.0.1:9"\n')
    error = error_of(cli(workspace, "model", "list"))
    assert "Ollama at http://127.0.0.1:9 could not list its models" in error
    assert "ollama serve" in error
