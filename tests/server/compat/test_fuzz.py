"""Schemathesis against the compat endpoints of a real ``openlam serve``, from the
generated OpenAPI: no input makes them fail with a 5xx, and none is served without a
token (401) or changes anything with a viewer's (403)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.server.compat.conftest import LiveServer

COMPAT = r"^/(v1/|api/(chat|generate|tags|show|version)$)"


@pytest.fixture(scope="module")
def operations(live_server: LiveServer) -> list:
    schema = schemathesis.openapi.from_url(f"{live_server.url}/api/v1/openapi.json")
    ops = [r.ok() for r in schema.include(path_regex=COMPAT).get_all_operations()]
    assert len(ops) == 8, [op.label for op in ops]
    return ops


@pytest.mark.timeout(600)
def test_no_input_breaks_a_compat_endpoint(live_server: LiveServer, operations: list) -> None:
    @settings(
        max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        op = data.draw(st.sampled_from(operations))
        case = data.draw(op.as_strategy())
        # viewer: enough to read, not to submit (so no fuzzed goal is ever queued)
        reply = case.call(
            base_url=live_server.url, headers=live_server.bearer("viewer"), timeout=60
        )
        assert reply.status_code < 500, (op.label, reply.status_code, reply.text[:500])
        if op.method.upper() == "POST" and op.path in (
            "/v1/chat/completions",
            "/api/chat",
            "/api/generate",
        ):
            assert reply.status_code in (400, 403, 404), (op.label, reply.text[:300])
        anonymous = case.call(base_url=live_server.url, timeout=60)
        if _no_such_path(anonymous):  # e.g. an empty model name: /v1/models/ is no endpoint
            return
        assert anonymous.status_code == 401, (op.label, anonymous.text[:300])

    check()


def _no_such_path(reply: Any) -> bool:
    """The app's own 404 for a path no route matches (problem JSON, not a provider's
    error shape): nothing there to protect. schemathesis's response keeps each header
    as a list of values."""
    content_type = reply.headers.get("content-type") or ""
    if isinstance(content_type, list):
        content_type = content_type[0] if content_type else ""
    return reply.status_code == 404 and content_type.startswith("application/problem+json")


def test_the_mcp_endpoint_is_not_in_the_openapi_but_needs_a_token(live_server: LiveServer) -> None:
    spec = httpx.get(f"{live_server.url}/api/v1/openapi.json").json()
    assert "/mcp" not in spec["paths"] and "/v1/chat/completions" in spec["paths"]
    for method in ("GET", "POST", "DELETE"):
        assert httpx.request(method, f"{live_server.url}/mcp").status_code == 401
