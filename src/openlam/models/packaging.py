"""Local model packaging over the Ollama API: list the models a local Ollama has, pull a
base model (with progress), and create ``openlam`` — a base model with OpenLAM's planning
rules as its system prompt and deterministic parameters — so that ``ollama:openlam`` is a
model name that works.

``create`` writes the Modelfile it stands for next to the workspace's state (for the
user to read, edit or use with ``ollama create -f``) and registers the model through
``POST /api/create`` with ``from``, ``system`` and ``parameters`` (the API's current form).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openlam.errors import UserError

NAME = "openlam"
PARAMETERS: dict[str, Any] = {"temperature": 0, "num_ctx": 8192}
"""Plans are structured output: no sampling, and room for the action list."""


def system_prompt() -> str:
    from openlam.loop.plan import RULES

    return (
        "You are the planner of OpenLAM: you turn a goal into a plan of actions that "
        "OpenLAM carries out and verifies. " + RULES
    )


def modelfile(
    base: str, system: str | None = None, parameters: dict[str, Any] | None = None
) -> str:
    lines = [f"FROM {base}", f'SYSTEM """{system or system_prompt()}"""']
    lines += [f"PARAMETER {k} {v}" for k, v in (parameters or PARAMETERS).items()]
    return "\n".join(lines) + "\n"


@dataclass
class OllamaAdmin:
    base_url: str
    timeout: float = 30.0

    def _url(self, path: str) -> str:
        return f"{self.base_url.rstrip('/')}{path}"

    def _fail(self, what: str, exc: Exception) -> UserError:
        return UserError(
            f"Ollama at {self.base_url} could not {what}: {exc}",
            "start Ollama (`ollama serve`) or set [openlam] ollama_url / "
            "OPENLAM_OLLAMA_URL to where it listens",
        )

    def _post(self, path: str, body: dict[str, Any], what: str) -> Any:
        import httpx

        try:
            reply = httpx.post(self._url(path), json=body, timeout=self.timeout)
        except httpx.HTTPError as exc:
            raise self._fail(what, exc) from None
        if reply.status_code >= 400:
            raise UserError(
                f"Ollama refused to {what}: {_error(reply)}",
                "check the model name with `openlam model list`",
            )
        return reply.json() if reply.content else {}

    def models(self) -> list[dict[str, Any]]:
        import httpx

        try:
            reply = httpx.get(self._url("/api/tags"), timeout=self.timeout)
            reply.raise_for_status()
        except httpx.HTTPError as exc:
            raise self._fail("list its models", exc) from None
        return reply.json().get("models", [])

    def pull(self, model: str) -> Iterator[dict[str, Any]]:
        """Progress records as Ollama streams them ({status, total?, completed?})."""
        import httpx

        try:
            with httpx.stream(
                "POST", self._url("/api/pull"), json={"model": model, "stream": True}, timeout=None
            ) as reply:
                if reply.status_code >= 400:
                    reply.read()
                    raise UserError(
                        f"Ollama refused to pull {model}: {_error(reply)}",
                        "check the name (e.g. qwen3:8b) and Ollama's network",
                    )
                for line in reply.iter_lines():
                    if not line.strip():
                        continue
                    record = json.loads(line)
                    if "error" in record:
                        raise UserError(
                            f"pulling {model} failed: {record['error']}",
                            "check the name (e.g. qwen3:8b) and Ollama's network",
                        )
                    yield record
        except httpx.HTTPError as exc:
            raise self._fail(f"pull {model}", exc) from None

    def create(
        self,
        base: str,
        name: str = NAME,
        *,
        system: str | None = None,
        parameters: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        known = {m.get("name") for m in self.models()} | {m.get("model") for m in self.models()}
        if base not in known and f"{base}:latest" not in known:
            raise UserError(
                f"Ollama has no model {base}",
                f"pull it first: `openlam model pull {base}` (have: "
                f"{', '.join(sorted(k for k in known if k)) or 'none'})",
            )
        body = {
            "model": name,
            "from": base,
            "system": system or system_prompt(),
            "parameters": parameters or PARAMETERS,
            "stream": False,
        }
        self._post("/api/create", body, f"create {name}")
        return body


def write_modelfile(state_dir: Path, base: str) -> Path:
    path = state_dir / "Modelfile"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(modelfile(base), encoding="utf-8")
    return path


def progress_line(record: dict[str, Any]) -> str:
    status = str(record.get("status", ""))
    total, done = record.get("total"), record.get("completed")
    if total and done is not None:
        return f"{status}: {done / total:.0%} of {total / 1e6:.1f} MB"
    return status


def _error(reply: Any) -> str:
    try:
        return str(reply.json().get("error", reply.text))
    except ValueError:
        return reply.text[:200]
