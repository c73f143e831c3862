"""MCP servers as actions, against the real reference servers: mcp-server-time and
mcp-server-fetch (PyPI), @modelcontextprotocol/server-filesystem (npm, installed by
scripts/install-test-deps.sh), and an SDK server over streamable HTTP."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from openlam.actions import mcp
from openlam.actions.registry import ActionRegistry
from openlam.actions.risk import reason_of
from openlam.actions.spec import ActionContext, Risk
from openlam.config import Settings
from openlam.errors import UserError
from openlam.loop.act import execute

ROOT = Path(__file__).resolve().parents[2]
NPM_FS = ROOT / ".cache" / "npm" / "node_modules" / ".bin" / "mcp-server-filesystem"


@pytest.fixture(autouse=True)
async def close_servers() -> AsyncIterator[None]:
    yield
    await mcp.aclose_all()


def ctx_for(settings: Settings, secrets: dict[str, str] | None = None) -> ActionContext:
    return ActionContext(
        run_id="run-1",
        step_id="s1",
        idempotency_key="run-1:s1",
        workspace=settings.workspace,
        settings=settings,
        secret=dict(secrets or {}).get,
    )


async def add_server(
    settings: Settings,
    name: str,
    command: list[str] | None = None,
    url: str | None = None,
    **options,
) -> ActionRegistry:
    """What `openlam mcp add` does, then a registry loaded from the workspace."""
    server = mcp.ServerConfig(
        name=name,
        transport="http" if url else "stdio",
        command=command[0] if command else None,
        args=command[1:] if command else [],
        url=url,
        **options,
    )
    mcp.save_server(settings, server)
    await mcp.refresh(settings, name, secret=lambda _n: None)  # the session stays open
    registry = ActionRegistry()
    mcp.register(registry, settings)
    return registry


async def call(registry: ActionRegistry, settings: Settings, action: str, **args):
    spec = registry.get(action)
    assert spec is not None, f"{action} not in {[s.name for s in registry]}"
    return await execute(spec, ctx_for(settings), args, timeout=20, retries=0)


# ------------------------------------------------------------------------ time (PyPI)


async def test_time_server_tools_are_actions_with_schema_and_risk(settings):
    registry = await add_server(settings, "time", ["mcp-server-time"], trusted=True)
    names = [s.name for s in registry]
    assert names == ["time.convert_time", "time.get_current_time"]
    spec = registry.get("time.get_current_time")
    assert spec is not None
    assert spec.risk is Risk.read and spec.idempotent and spec.source == "mcp:time"
    assert reason_of(spec) == "readOnlyHint (server vouched for by you)"
    assert spec.input_schema["required"] == ["timezone"]
    cache = json.loads(mcp.cache_path(settings, "time").read_text())
    assert cache["server_info"]["name"] == "mcp-time"


async def test_an_unvouched_server_cannot_lower_its_tools_below_external(settings):
    """An MCP tool that claims read-only could post data out: the claim of a server the
    user has not vouched for is not believed (issue 8 §5)."""
    registry = await add_server(settings, "time", ["mcp-server-time"])
    spec = registry.get("time.get_current_time")
    assert spec is not None and spec.risk is Risk.external and not spec.idempotent
    assert reason_of(spec) == (
        "default for a tool of an unvouched MCP server (its readOnlyHint is not believed)"
    )
    # the user's word per tool, and vouching for the whole server later
    mcp.SERVERS.update(settings, "time", risk={"convert_time": "read"})
    registry = ActionRegistry()
    mcp.register(registry, settings)
    assert registry.get("time.convert_time").risk is Risk.read  # type: ignore[union-attr]
    assert reason_of(registry.get("time.convert_time")) == "set by you (--risk)"  # type: ignore[arg-type]
    assert registry.get("time.get_current_time").risk is Risk.external  # type: ignore[union-attr]
    mcp.SERVERS.update(settings, "time", trusted=True)
    registry = ActionRegistry()
    mcp.register(registry, settings)
    assert registry.get("time.get_current_time").risk is Risk.read  # type: ignore[union-attr]


async def test_a_risk_for_a_tool_that_does_not_exist_is_reported_with_close_matches(settings):
    await add_server(settings, "time", ["mcp-server-time"], risk={"convert_tmie": "read"})
    registry = ActionRegistry()
    mcp.register(registry, settings)
    assert any(
        "convert_tmie names no tool (did you mean convert_time?)" in e for e in registry.load_errors
    ), registry.load_errors


async def test_time_server_call_succeeds_and_its_refusal_is_a_failed_step(settings):
    registry = await add_server(settings, "time", ["mcp-server-time"])
    ok = await call(registry, settings, "time.get_current_time", timezone="Asia/Tokyo")
    assert ok.status == "succeeded", ok
    assert ok.output["timezone"] == "Asia/Tokyo" and "T" in ok.output["datetime"]

    refused = await call(registry, settings, "time.get_current_time", timezone="Mars/Olympus")
    assert refused.status == "failed"
    assert "time.get_current_time failed" in refused.error
    assert "Invalid timezone" in refused.error and "Mars/Olympus" in refused.error

    invalid = await call(registry, settings, "time.convert_time", time="10:00")
    assert invalid.status == "failed" and invalid.error.startswith("invalid arguments")
    assert "source_timezone" in invalid.error


async def test_loading_starts_nothing_then_one_session_is_started_lazily_and_reused(settings):
    registry = await add_server(settings, "time", ["mcp-server-time"], trusted=True)
    await mcp.aclose_all()  # as after `openlam mcp add`: nothing keeps running
    registry = ActionRegistry()
    mcp.register(registry, settings)
    assert mcp.running_servers() == []  # loading the registry read the cache only
    results = await asyncio.gather(
        *(
            call(registry, settings, "time.get_current_time", timezone=tz)
            for tz in ("Europe/Paris", "America/New_York", "Etc/UTC")
        )
    )
    assert [r.status for r in results] == ["succeeded"] * 3
    pool = mcp._pool()
    assert len(pool.connections) == 1
    conn = next(iter(pool.connections.values()))
    again = await call(registry, settings, "time.get_current_time", timezone="Etc/UTC")
    assert again.status == "succeeded"
    assert next(iter(mcp._pool().connections.values())) is conn
    assert mcp.running_servers() == ["time"]

    await mcp.aclose_all()
    assert mcp.running_servers() == [] and conn.dead
    assert conn.task is not None and conn.task.done()
    # and a later call starts it again
    assert (
        await call(registry, settings, "time.get_current_time", timezone="Etc/UTC")
    ).status == "succeeded"


async def test_a_stale_tool_list_is_named_in_the_error(settings):
    registry = await add_server(settings, "time", ["mcp-server-time"])
    cache_file = mcp.cache_path(settings, "time")
    cache = json.loads(cache_file.read_text())
    cache["tools"].append({**cache["tools"][0], "name": "get_moon_phase"})
    cache_file.write_text(json.dumps(cache))
    registry = ActionRegistry()
    mcp.register(registry, settings)
    result = await call(registry, settings, "time.get_moon_phase", timezone="Etc/UTC")
    assert result.status == "failed"
    assert "get_moon_phase" in result.error and "openlam mcp test time" in result.error


async def test_a_server_that_cannot_start_is_a_clear_error(settings):
    with pytest.raises(UserError, match="command 'no-such-mcp-server' not found"):
        await add_server(settings, "ghost", ["no-such-mcp-server"])
    # cached earlier but its command has gone: the step fails and names it
    server = mcp.ServerConfig(name="ghost", transport="stdio", command="no-such-mcp-server")
    spec = mcp.tool_specs(
        server, [{"name": "boo", "input_schema": {"type": "object"}}], settings.workspace
    )[0]
    result = await execute(spec, ctx_for(settings), {}, timeout=10, retries=0)
    assert result.status == "failed" and "not found" in result.error


async def test_a_server_without_a_cached_tool_list_is_reported_not_started(settings):
    mcp.save_server(
        settings, mcp.ServerConfig(name="time", transport="stdio", command="mcp-server-time")
    )
    registry = ActionRegistry()
    mcp.register(registry, settings)
    assert len(registry) == 0
    assert any("openlam mcp test time" in e for e in registry.load_errors)
    assert mcp.running_servers() == []


# ----------------------------------------------------------------------- fetch (PyPI)


async def test_fetch_server_reads_a_local_page_when_private_addresses_are_allowed(settings, site):
    registry = await add_server(
        settings, "fetch", ["mcp-server-fetch", "--allow-private-ips"], trusted=True
    )
    spec = registry.get("fetch.fetch")
    assert spec is not None and spec.risk is Risk.read
    assert getattr(spec, "egress", None) is True  # a URL argument: the plan picks the host
    result = await call(registry, settings, "fetch.fetch", url=f"{site.url}/page.html")
    assert result.status == "succeeded", result
    assert "Acme sells anvils" in result.output["text"]


async def test_fetch_server_refusing_loopback_is_a_failed_step_with_its_message(settings, site):
    registry = await add_server(settings, "fetch", ["mcp-server-fetch"])
    result = await call(registry, settings, "fetch.fetch", url=f"{site.url}/page.html")
    assert result.status == "failed"
    assert "not a public address" in result.error
    assert site.hits("/page") == 0


# ------------------------------------------------------------------ filesystem (npm)


@pytest.fixture(scope="module")
def filesystem_server() -> Path:
    if shutil.which("npm") is None:
        pytest.skip("npm is not installed: cannot install @modelcontextprotocol/server-filesystem")
    if not NPM_FS.exists():
        subprocess.run(
            ["bash", str(ROOT / "scripts" / "install-test-deps.sh")], check=True, timeout=300
        )
    assert NPM_FS.exists(), "scripts/install-test-deps.sh did not install server-filesystem"
    return NPM_FS


async def test_filesystem_server_reads_writes_and_refuses_paths_outside_its_root(
    settings, filesystem_server, tmp_path
):
    root = tmp_path / "shared"
    root.mkdir()
    (root / "brief.txt").write_text("quarterly numbers\n")
    registry = await add_server(settings, "fs", [str(filesystem_server), str(root)])
    assert registry.get("fs.read_text_file").risk is Risk.external  # type: ignore[union-attr]
    assert registry.get("fs.write_file").risk is Risk.destructive  # type: ignore[union-attr]
    registry = await add_server(settings, "fs", [str(filesystem_server), str(root)], trusted=True)
    assert registry.get("fs.read_text_file").risk is Risk.read  # type: ignore[union-attr]
    assert registry.get("fs.write_file").risk is Risk.destructive  # type: ignore[union-attr]
    assert registry.get("fs.create_directory").risk is Risk.external  # type: ignore[union-attr]

    read = await call(registry, settings, "fs.read_text_file", path=str(root / "brief.txt"))
    assert read.status == "succeeded", read
    assert read.output["content"] == "quarterly numbers\n"

    wrote = await call(
        registry, settings, "fs.write_file", path=str(root / "out.md"), content="# done\n"
    )
    assert wrote.status == "succeeded", wrote
    assert (root / "out.md").read_text() == "# done\n"

    outside = tmp_path / "secret.txt"
    outside.write_text("not for the server")
    refused = await call(registry, settings, "fs.read_text_file", path=str(outside))
    assert refused.status == "failed"
    assert "outside allowed directories" in refused.error


# ------------------------------------------------------------ streamable HTTP server

HTTP_SERVER = textwrap.dedent('''
    import sys
    from mcp.server.mcpserver import MCPServer
    from mcp.server.mcpserver.exceptions import ToolError
    from mcp.types import ToolAnnotations

    server = MCPServer("openlam-test-http")

    @server.tool(annotations=ToolAnnotations(read_only_hint=True))
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    @server.tool(annotations=ToolAnnotations(destructive_hint=True))
    def wipe(what: str) -> str:
        """Pretend to delete something."""
        return f"wiped {what}"

    @server.tool()
    def shout(text: str) -> str:
        """Upper-case a text."""
        return text.upper()

    @server.tool()
    def fail(reason: str) -> str:
        """Always fails."""
        raise ToolError(reason)

    server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[1]))
''')


# A server of the handshake era (it does not know `server/discover`), so the SDK answers
# over server-sent events, where its client caps one message at 1 MiB; with resources and
# a prompt.
LEGACY_HTTP_SERVER = textwrap.dedent('''
    import asyncio, json, sys
    import uvicorn
    from mcp.server.mcpserver import MCPServer

    server = MCPServer("openlam-test-legacy")

    @server.tool()
    async def big(n: int) -> str:
        """A text of n characters."""
        return "x" * n

    @server.tool()
    async def slow_add(a: int, b: int) -> int:
        """Add, slowly."""
        await asyncio.sleep(1.0)
        return a + b

    @server.resource("notes://today", name="today", mime_type="text/plain")
    def today() -> str:
        """Today's notes."""
        return "ship on friday"

    @server.prompt()
    def summarize(topic: str) -> str:
        """Ask for a summary."""
        return f"Summarize {topic} in three bullet points."

    app = server.streamable_http_app()

    async def handshake_era(scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST":
            return await app(scope, receive, send)
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        if isinstance(data, dict) and data.get("method") == "server/discover":
            error = {"jsonrpc": "2.0", "id": data.get("id"),
                     "error": {"code": -32601, "message": "Method not found"}}
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": json.dumps(error).encode()})
            return
        replayed = False

        async def replay():
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await app(scope, replay, send)

    uvicorn.run(handshake_era, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
''')


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[str]:
    yield from _serve_script(tmp_path, HTTP_SERVER)


@pytest.fixture
def legacy_http_server(tmp_path: Path) -> Iterator[str]:
    yield from _serve_script(tmp_path, LEGACY_HTTP_SERVER)


def _serve_script(tmp_path: Path, text: str) -> Iterator[str]:
    script = tmp_path / "http_server.py"
    script.write_text(text)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, str(script), str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("the streamable HTTP test server did not start")
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def test_streamable_http_server_tools_risks_calls_and_errors(settings, http_server):
    registry = await add_server(
        settings, "calc", url=http_server, risk={"shout": "write"}, trusted=True
    )
    risks = {s.name: s.risk for s in registry}
    assert risks == {
        "calc.add": Risk.read,
        "calc.wipe": Risk.destructive,
        "calc.shout": Risk.write,  # overridden in the configuration
        "calc.fail": Risk.external,
    }
    added = await call(registry, settings, "calc.add", a=2, b=40)
    assert added.status == "succeeded" and added.output == {"result": 42}
    shouted = await call(registry, settings, "calc.shout", text="hi")
    assert shouted.output == {"result": "HI"}
    failed = await call(registry, settings, "calc.fail", reason="the disk is full")
    assert failed.status == "failed" and "the disk is full" in failed.error
    wrong = await call(registry, settings, "calc.add", a="two", b=1)
    assert wrong.status == "failed" and "invalid arguments: a:" in wrong.error


async def test_http_server_needing_a_missing_secret_names_it(settings, http_server):
    registry = await add_server(settings, "calc", url=http_server)
    server = mcp.load_servers(settings)["calc"]
    server.bearer_secret = "CALC_TOKEN"
    spec = mcp.tool_specs(
        server, [{"name": "add", "input_schema": {"type": "object"}}], settings.workspace
    )[0]
    assert spec.secrets == ("CALC_TOKEN",)
    result = await execute(spec, ctx_for(settings), {"a": 1, "b": 2}, timeout=10, retries=0)
    assert result.status == "failed" and "CALC_TOKEN" in result.error
    assert len(registry) == 4


async def test_a_result_over_the_message_limit_names_the_limit_and_spares_other_calls(
    settings, legacy_http_server
):
    """Issue 8 §8: over streamable HTTP a result above the SDK's 1 MiB cap failed as
    "closed the connection… see a log" (there is no log for an HTTP server) and took the
    concurrent calls to the same server with it."""
    registry = await add_server(settings, "legacy", url=legacy_http_server, trusted=True)
    big, slow_a, slow_b = await asyncio.gather(
        call(registry, settings, "legacy.big", n=2_000_000),
        call(registry, settings, "legacy.slow_add", a=1, b=2),
        call(registry, settings, "legacy.slow_add", a=3, b=4),
    )
    assert big.status == "failed"
    assert (
        "the MCP server legacy's result for big is larger than the 1 MiB message limit "
        "of the MCP HTTP transport"
    ) in big.error
    assert "--max-message-mb" in big.error and ".log" not in big.error
    assert slow_a.status == slow_b.status == "succeeded", (slow_a, slow_b)
    assert (slow_a.output, slow_b.output) == ({"result": 3}, {"result": 7})
    # the shared session was kept, and a larger limit lets the result through
    assert mcp.running_servers() == ["legacy"]
    registry = await add_server(
        settings, "legacy", url=legacy_http_server, trusted=True, max_message_bytes=4 * 1024 * 1024
    )
    bigger = await call(registry, settings, "legacy.big", n=2_000_000)
    assert bigger.status == "succeeded" and len(bigger.output["result"]) == 2_000_000


async def test_resources_and_prompts_are_read_actions(settings, legacy_http_server):
    registry = await add_server(settings, "legacy", url=legacy_http_server)
    read = registry.get("legacy.read_resource")
    assert read is not None and read.risk is Risk.read  # even for an unvouched server
    assert "notes://today" in read.description
    assert registry.get("legacy.big").risk is Risk.external  # type: ignore[union-attr]
    listed = await call(registry, settings, "legacy.list_resources")
    assert listed.status == "succeeded", listed
    assert [r["uri"] for r in listed.output["resources"]] == ["notes://today"]
    got = await call(registry, settings, "legacy.read_resource", uri="notes://today")
    assert got.status == "succeeded" and got.output["text"] == "ship on friday"
    missing = await call(registry, settings, "legacy.read_resource", uri="notes://nope")
    assert missing.status == "failed" and "notes://nope" in missing.error
    prompt = registry.get("legacy.get_prompt")
    assert prompt is not None and "summarize(topic)" in prompt.description
    filled = await call(
        registry, settings, "legacy.get_prompt", name="summarize", arguments={"topic": "the launch"}
    )
    assert filled.status == "succeeded", filled
    assert filled.output["text"] == "Summarize the launch in three bullet points."


def test_tools_that_only_run_as_tasks_are_not_offered(settings):
    server = mcp.ServerConfig(name="jobs", transport="stdio", command="jobs-server")
    tools = [
        {"name": "quick", "input_schema": {"type": "object"}},
        {"name": "research", "input_schema": {"type": "object"}, "task_support": "required"},
        {"name": "either", "input_schema": {"type": "object"}, "task_support": "optional"},
    ]
    specs = mcp.tool_specs(server, tools, settings.workspace)
    assert [s.name for s in specs] == ["jobs.quick", "jobs.either"]
    assert mcp.unusable_tools({"tools": tools}) == ["research"]


async def test_an_unreachable_http_server_fails_fast_with_the_url(settings):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(UserError, match=f"127.0.0.1:{port}"):
        await add_server(settings, "gone", url=f"http://127.0.0.1:{port}/mcp")


# ----------------------------------------------------------------- inside a goal


async def test_mcp_tools_inside_a_goal_with_a_refusal_reported_as_a_failed_step(
    settings, site, tmp_path
):
    from openlam import Workforce
    from openlam.testing import scripted_model

    registry = await add_server(settings, "time", ["mcp-server-time"], trusted=True)
    for spec in await add_server(
        settings, "fetch", ["mcp-server-fetch", "--allow-private-ips"], trusted=True
    ):
        registry.add(spec)
    plan = {
        "steps": [
            {"id": "now", "action": "time.get_current_time", "args": {"timezone": "Europe/Berlin"}},
            {"id": "page", "action": "fetch.fetch", "args": {"url": f"{site.url}/page.html"}},
            {"id": "bad", "action": "time.get_current_time", "args": {"timezone": "Nowhere/Land"}},
        ]
    }
    name = f"test:mcp-goal-{id(plan)}"
    scripted_model(name, [plan, {"steps": [], "note": "the timezone does not exist"}])
    async with Workforce(settings=settings, model=name) as wf:
        for spec in registry:
            wf.runtime.registry.add(spec, replace=True)
        outcome = await wf.run("what time is it in Berlin, and what does Acme sell?")
    steps = {s.id: s for s in outcome.steps}
    assert steps["now"].status.value == "succeeded"
    assert steps["now"].output["timezone"] == "Europe/Berlin"
    assert steps["page"].status.value == "succeeded", steps["page"].error
    assert "Acme sells anvils" in steps["page"].output["text"]
    assert steps["bad"].status.value == "failed"
    assert "Invalid timezone" in steps["bad"].error
    assert outcome.status.value == "partial"


async def test_filesystem_tools_inside_a_goal_refusal_is_a_failed_step(
    settings, filesystem_server, tmp_path
):
    from openlam import Workforce
    from openlam.testing import scripted_model

    root = tmp_path / "shared"
    root.mkdir()
    (root / "notes.txt").write_text("ship on friday\n")
    registry = await add_server(settings, "fs", [str(filesystem_server), str(root)], trusted=True)
    plan = {
        "steps": [
            {
                "id": "read",
                "action": "fs.read_text_file",
                "args": {"path": str(root / "notes.txt")},
            },
            {"id": "escape", "action": "fs.read_text_file", "args": {"path": "/etc/hostname"}},
        ]
    }
    name = f"test:mcp-fs-goal-{id(plan)}"
    scripted_model(name, [plan, {"steps": [], "note": "that file is outside the share"}])
    async with Workforce(settings=settings, model=name) as wf:
        for spec in registry:
            wf.runtime.registry.add(spec, replace=True)
        outcome = await wf.run("read the notes and the host name")
    steps = {s.id: s for s in outcome.steps}
    assert steps["read"].status.value == "succeeded"
    assert steps["read"].output["content"] == "ship on friday\n"
    assert steps["escape"].status.value == "failed"
    assert "outside allowed directories" in steps["escape"].error
    assert outcome.status.value == "partial"


def _children_running(name: str) -> list[int]:
    """Pids of this process's children whose command line mentions ``name``."""
    import os

    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == os.getpid() and name in cmdline:
            found.append(int(entry.name))
    return found


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc to find the server")
async def test_a_server_that_dies_is_restarted_by_the_retry_of_the_next_step(settings):
    import os
    import signal

    registry = await add_server(settings, "time", ["mcp-server-time"], trusted=True)
    assert (
        await call(registry, settings, "time.get_current_time", timezone="Etc/UTC")
    ).status == "succeeded"
    [pid] = _children_running("mcp-server-time")
    os.kill(pid, signal.SIGKILL)
    spec = registry.get("time.get_current_time")
    assert spec is not None
    result = await execute(spec, ctx_for(settings), {"timezone": "Etc/UTC"}, timeout=20, retries=1)
    assert result.status == "succeeded" and result.attempts == 2
    assert _children_running("mcp-server-time") not in ([], [pid])
    await mcp.close_all()  # the runtime's shutdown hook
    assert _children_running("mcp-server-time") == []  # shut down, not left behind


async def test_a_servers_malformed_or_huge_tool_descriptions_do_not_break_planning(settings):
    """A server may send any JSON as a tool's schema and any text as its description:
    listed in every planning prompt, they must neither fail it nor flood it."""
    from openlam import Workforce
    from openlam.actions.spec import MAX_SUMMARY
    from openlam.testing import scripted_model

    server = mcp.ServerConfig(name="odd", transport="stdio", command="odd-server", trusted=True)
    tools = [
        {"name": "listy", "input_schema": {"type": "object", "properties": [1, 2]}},
        {"name": "scalar", "input_schema": {"type": "object", "properties": {"x": 5}}},
        {"name": "items", "input_schema": {"properties": {"x": {"type": "array", "items": 7}}}},
        {"name": "req", "input_schema": {"properties": {"a": {}}, "required": [{}, "a"]}},
        {"name": "enum", "input_schema": {"properties": {"x": {"enum": list(range(5000))}}}},
        {"name": "wordy", "description": "w" * 1_000_000, "input_schema": {"type": "object"}},
        {"name": "fmt", "input_schema": {"properties": {"u": {"format": {"no": "hash"}}}}},
    ]
    specs = mcp.tool_specs(server, tools, settings.workspace)
    assert len(specs) == len(tools)
    lines = {s.name: s.signature() for s in specs}
    assert all(len(line) <= MAX_SUMMARY + 200 for line in lines.values()), lines
    assert lines["odd.enum"].startswith("odd.enum(x?: 0|1|2|") and "|…" in lines["odd.enum"]
    assert lines["odd.req"].startswith("odd.req(a: any)")
    for spec in specs:
        spec.arg_errors({})  # checking arguments against such a schema raises nothing

    name = "test:odd-tools"
    model = scripted_model(
        name,
        [
            {
                "steps": [
                    {
                        "id": "s1",
                        "action": "files.write",
                        "args": {"path": "ok.md", "content": "fine"},
                    }
                ]
            }
        ],
    )
    async with Workforce(settings=settings, model=name) as wf:
        for spec in specs:
            wf.runtime.registry.add(spec, replace=True)
        outcome = await wf.run("with the odd server's tools, write 'fine' to ok.md")
    assert outcome.status.value == "completed", outcome.summary
    prompt = json.dumps(model.requests[0])
    assert all(n in prompt for n in lines) and len(prompt) < 100_000  # listed, not flooding
