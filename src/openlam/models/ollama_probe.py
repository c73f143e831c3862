"""Is a local Ollama answering? Kept apart from the Ollama model so that choosing a model
(every ``openlam run`` without ``--model``) does not import pydantic-ai."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit


def ollama_reachable(base_url: str, timeout: float = 0.3) -> list[str] | None:
    """Names of the models a local Ollama serves, or None when none answers quickly."""
    parts = urlsplit(base_url)
    try:  # nothing listening (the usual case without Ollama): no HTTP client needed
        socket.create_connection(
            (parts.hostname or "127.0.0.1", parts.port or (443 if parts.scheme == "https" else 80)),
            timeout=timeout,
        ).close()
    except OSError:
        return None
    import httpx

    try:
        response = httpx.get(f"{base_url.rstrip('/')}/api/tags", timeout=timeout)
        response.raise_for_status()
        return [m["name"] for m in response.json().get("models", []) if "name" in m]
    except (httpx.HTTPError, ValueError, KeyError, TypeError, AttributeError):
        return None
