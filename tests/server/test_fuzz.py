"""API fuzzing with schemathesis against the generated OpenAPI, on a real `openlam serve`:
no input makes a 5xx; every endpoint but health (and logging in) answers 401 without a
token, and every endpoint that changes something answers 403 to a viewer."""

from __future__ import annotations

import itertools
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from tests.procs import wait_until_up
from tests.server.test_processes import free_port, stop

EXAMPLES = 6  # per operation and mode: the whole API in well under a minute
MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)  # valid input, and invalid
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
# health; logging in; webhooks, which their trigger's own secret authenticates
OPEN = {("GET", "/api/v1/health"), ("POST", "/api/v1/session"), ("POST", "/hooks/{name}")}
# Adding an MCP server starts the command it names: the fuzzer must not choose one. Its
# refusals (401, 403) are fuzzed like every endpoint; adding a source has its own test.
NOT_AS_ADMIN = {("POST", "/api/v1/sources")}


class Live:
    def __init__(self, base: str, admin: str, viewer: str) -> None:
        self.base, self.admin, self.viewer = base, admin, viewer


def _token(workspace: Path, name: str, role: str) -> str:
    made = subprocess.run(
        [
            sys.executable,
            "-m",
            "openlam",
            "tokens",
            "create",
            name,
            "--role",
            role,
            "--workspace",
            str(workspace),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert made.returncode == 0, made.stderr
    return made.stdout.strip()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    workspace = tmp_path_factory.mktemp("fuzz") / "ws"
    workspace.mkdir()
    admin, viewer = _token(workspace, "root", "admin"), _token(workspace, "eve", "viewer")
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "openlam",
            "serve",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--workspace",
            str(workspace),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    wait_until_up(f"{base}/api/v1/health", proc)
    yield Live(base, admin, viewer)
    log = stop(proc)
    assert "Traceback" not in log, log


def test_fuzzed_requests(live: Live) -> None:
    spec = httpx.get(f"{live.base}/api/v1/openapi.json").json()
    schema = schemathesis.openapi.from_dict(spec)
    # the REST API; the chat and MCP compat endpoints answer in their providers' error
    # shapes and are fuzzed in tests/server/compat/test_fuzz.py
    operations = [
        op
        for op in (result.ok() for result in schema.get_all_operations())
        if op.path.startswith(("/api/v1/", "/hooks/"))
    ]
    assert len(operations) >= 25
    seen: dict[tuple[str, str], int] = {}
    for operation, mode in itertools.product(operations, MODES):

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def fuzz(case: schemathesis.Case) -> None:
            key = (case.method.upper(), case.path)
            seen[key] = seen.get(key, 0) + 1
            check_case(case, live)

        try:
            fuzz()
        except Unsatisfiable:  # nothing to make invalid (no parameters, no body)
            assert mode is GenerationMode.NEGATIVE
    assert len(seen) == len(operations)  # every operation was called, some many times
    assert sum(seen.values()) >= 3 * len(operations), seen


def check_case(case: schemathesis.Case, live: Live) -> None:
    key = (case.method.upper(), case.path)
    if key not in OPEN:
        anonymous = case.call(base_url=live.base)
        assert anonymous.status_code == 401, (key, anonymous.status_code, anonymous.text)
        assert anonymous.headers["content-type"] == ["application/problem+json"]
        if key[0] in UNSAFE and key[1] != "/api/v1/session":
            viewer = case.call(
                base_url=live.base, headers={"Authorization": f"Bearer {live.viewer}"}
            )
            assert viewer.status_code == 403, (key, viewer.status_code, viewer.text)
    if key in NOT_AS_ADMIN:
        return
    case.call_and_validate(
        base_url=live.base,
        headers={"Authorization": f"Bearer {live.admin}"},
        checks=[not_a_server_error],
    )
