"""browser.*: Debian's Chromium driven by Playwright against pages served on loopback."""

from __future__ import annotations

import hashlib
import html
import socket
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest

from openlam.actions.builtin import browser
from openlam.actions.registry import ActionRegistry
from openlam.actions.spec import ActionContext
from openlam.config import Settings
from openlam.loop.act import execute

FORM = """<!doctype html><html><head><title>Sign up</title></head><body>
<h1>Sign up</h1>
<form action="/greet" method="post">
  <label>Name <input id="name" name="name"></label>
  <label>Password <input id="password" name="password" type="password"></label>
  <button type="submit">Send</button>
</form>
<a id="next" href="/other">other page</a>
</body></html>"""

BARE = """<!doctype html><html><head><title>Bare</title></head><body>
<form id="bare" action="/greet" method="post"><input id="name" name="name"></form>
</body></html>"""

OTHER = "<!doctype html><html><head><title>Other</title></head><body><p>page two</p></body></html>"


BROKEN = """<!doctype html><html><head><title>Broken</title></head><body>
<form action="/broken" method="post"><input name="x"><button>Send</button></form>
</body></html>"""

HITS: list[str] = []  # paths the site was asked for


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        HITS.append(self.path)
        port = self.server.server_address[1]
        pages = {
            "/": FORM,
            "/other": OTHER,
            "/bare": BARE,
            "/broken-form": BROKEN,
            # an image from this machine, spelled as an IPv4-mapped IPv6 address
            "/pixel-page": f"<html><head><title>Pixel</title></head><body><p>hi</p>"
            f"<img src='http://[::ffff:127.0.0.1]:{port}/pixel'></body>"
            f"</html>",
        }
        if self.path == "/to-metadata":
            head = (
                b"HTTP/1.1 302 Found\r\nLocation: http://169.254.169.254/latest/meta-data/"
                b"\r\nContent-Length: 0\r\n\r\n"
            )
            self.wfile.write(head)
        elif self.path in pages:
            self._send(200, pages[self.path])
        else:
            self._send(404, "<html><body>not found</body></html>")

    def do_POST(self) -> None:
        HITS.append(self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
        if self.path == "/broken":  # acknowledges nothing: the submission failed
            self._send(500, "<html><head><title>Oops</title></head><body>error</body></html>")
            return
        form = parse_qs(body)
        name = html.escape(form.get("name", [""])[0])
        chars = len(form.get("password", [""])[0])
        self._send(
            200,
            f"<html><head><title>Welcome</title></head><body>"
            f"<p id='result'>Hello, {name}!</p><p id='pw'>password: {chars} chars"
            f"</p></body></html>",
        )

    def _send(self, status: int, page: str) -> None:
        data = page.encode()
        head = (
            f"HTTP/1.1 {status} X\r\nContent-Type: text/html; charset=utf-8\r\n"
            f"Content-Length: {len(data)}\r\n\r\n"
        ).encode()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.wfile.write(head + data)  # one piece: no delayed-ACK stall

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def registry() -> ActionRegistry:
    reg = ActionRegistry()
    reg.add_module(browser)
    return reg


LOCAL_NETWORK = {"allow_networks": ["127.0.0.0/8", "::1/128"]}


def make_ctx(workspace: Path, run_id: str | None = None, **settings_raw: Any) -> ActionContext:
    """A context whose browser may reach the loopback test site (unless ``network`` is
    given)."""
    raw = {"network": LOCAL_NETWORK, **settings_raw}
    return ActionContext(
        run_id=run_id or f"run-{uuid.uuid4().hex[:8]}",
        step_id="s1",
        idempotency_key="k1",
        workspace=workspace,
        settings=Settings(workspace=workspace, raw=raw),
        secret=lambda name: {"SITE_PASSWORD": "pw-0123456789"}.get(name),
    )


@pytest.fixture
async def ctx(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[ActionContext]:
    monkeypatch.delenv(browser.EXECUTABLE_ENV, raising=False)
    context = make_ctx(tmp_path)
    yield context
    await browser.close_run(context.run_id)
    assert context.run_id not in browser.open_runs()


async def call(
    registry: ActionRegistry, ctx: ActionContext, name: str, retries: int = 0, **args: Any
) -> dict[str, Any]:
    spec = registry.get(name)
    assert spec is not None, name
    return await execute(spec, ctx, args, timeout=60, retries=retries)


async def test_fill_submit_read_back_and_screenshot(
    registry: ActionRegistry, ctx: ActionContext, site: str
) -> None:
    opened = await call(registry, ctx, "browser.open", url=f"{site}/")
    assert opened.status == "succeeded", opened.error
    assert opened.output == {"url": f"{site}/", "title": "Sign up", "status": 200}

    filled = await call(registry, ctx, "browser.fill", selector="#name", value="Ada Lovelace")
    assert filled.status == "succeeded", filled.error
    assert filled.output == {"selector": "#name", "chars": 12}

    submitted = await call(registry, ctx, "browser.submit", selector="#name")
    assert submitted.status == "succeeded", submitted.error
    assert submitted.output == {"url": f"{site}/greet", "title": "Welcome", "status": 200}

    read = await call(registry, ctx, "browser.text", selector="#result")
    assert read.status == "succeeded", read.error
    assert read.output["text"] == "Hello, Ada Lovelace!"
    assert read.output["matches"] == 1

    shot = await call(registry, ctx, "browser.screenshot", path="shots/welcome.png")
    assert shot.status == "succeeded", shot.error  # includes its effect check
    image = ctx.workspace / "shots" / "welcome.png"
    data = image.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert shot.output == {
        "path": "shots/welcome.png",
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }


async def test_fill_from_a_secret_never_returns_it(
    registry: ActionRegistry, ctx: ActionContext, site: str
) -> None:
    await call(registry, ctx, "browser.open", url=f"{site}/")
    filled = await call(registry, ctx, "browser.fill", selector="#password", secret="SITE_PASSWORD")
    assert filled.status == "succeeded", filled.error
    assert "pw-0123456789" not in repr(filled)
    clicked = await call(registry, ctx, "browser.click", selector="button[type=submit]")
    assert clicked.output["title"] == "Welcome"
    read = await call(registry, ctx, "browser.text", selector="#pw")
    assert read.output["text"] == "password: 13 chars"

    unknown = await call(registry, ctx, "browser.fill", selector="#password", secret="NOPE")
    assert unknown.status == "failed"
    assert "no secret 'NOPE'" in unknown.error


async def test_submit_a_form_without_a_button(
    registry: ActionRegistry, ctx: ActionContext, site: str
) -> None:
    await call(registry, ctx, "browser.open", url=f"{site}/bare")
    await call(registry, ctx, "browser.fill", selector="#name", value="Grace")
    submitted = await call(registry, ctx, "browser.submit", selector="#bare")
    assert submitted.status == "succeeded", submitted.error
    assert submitted.output["title"] == "Welcome"
    read = await call(registry, ctx, "browser.text", selector="#result")
    assert read.output["text"] == "Hello, Grace!"


async def test_concurrent_steps_of_one_run_share_one_browser(
    registry: ActionRegistry, ctx: ActionContext, site: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    launches: list[str] = []
    real_launch = browser._launch

    async def counting_launch(run_id: str, config: browser.BrowserConfig) -> Any:
        launches.append(run_id)
        return await real_launch(run_id, config)

    monkeypatch.setattr(browser, "_launch", counting_launch)
    first, second = await asyncio.gather(
        call(registry, ctx, "browser.open", url=f"{site}/other"),
        call(registry, ctx, "browser.text"),
    )
    assert first.status == second.status == "succeeded", (first, second)
    assert launches == [ctx.run_id]
    after = await call(registry, ctx, "browser.text")
    assert after.output["text"] == "page two"


async def test_click_follows_a_link_and_page_text(
    registry: ActionRegistry, ctx: ActionContext, site: str
) -> None:
    await call(registry, ctx, "browser.open", url=f"{site}/")
    clicked = await call(registry, ctx, "browser.click", selector="#next")
    assert clicked.output == {"url": f"{site}/other", "title": "Other"}
    whole = await call(registry, ctx, "browser.text")
    assert whole.output["text"] == "page two"
    cut = await call(registry, ctx, "browser.text", max_chars=4)
    assert cut.output["text"] == "page" and cut.output["truncated"] is True


async def test_bad_selector_fails_with_its_cause(
    registry: ActionRegistry, ctx: ActionContext, site: str
) -> None:
    await call(registry, ctx, "browser.open", url=f"{site}/")
    for name, args in (
        ("browser.click", {"selector": "#missing"}),
        ("browser.fill", {"selector": "#missing", "value": "x"}),
        ("browser.text", {"selector": "#missing"}),
        ("browser.submit", {"selector": "#missing"}),
    ):
        result = await call(registry, ctx, name, retries=2, timeout=0.5, **args)
        assert result.status == "failed", name
        assert "no element matches '#missing'" in result.error, result.error
        assert result.attempts == 1  # not retried: waiting longer would not help

    ambiguous = await call(registry, ctx, "browser.click", selector="input", timeout=0.5)
    assert ambiguous.status == "failed"
    assert "strict mode violation" in ambiguous.error

    no_form = await call(registry, ctx, "browser.submit", selector="h1", timeout=0.5)
    assert no_form.status == "failed"
    assert "neither a form nor inside one" in no_form.error


async def test_refusals_and_unreachable_pages(
    registry: ActionRegistry, ctx: ActionContext, site: str, tmp_path: Path
) -> None:
    (tmp_path / "local.html").write_text("<p>local</p>")
    for url in (
        f"file://{tmp_path / 'local.html'}",
        "data:text/html,<p>x</p>",
        "chrome://settings",
        "javascript:alert(1)",
    ):
        refused = await call(registry, ctx, "browser.open", url=url)
        assert refused.status == "failed"
        assert "only http and https" in refused.error
    assert ctx.run_id not in browser.open_runs()  # refused before any browser started

    missing = await call(registry, ctx, "browser.open", url=f"{site}/missing")
    assert missing.status == "failed"
    assert "answered HTTP 404" in missing.error

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    refused = await call(registry, ctx, "browser.open", url=f"http://127.0.0.1:{port}/")
    assert refused.status == "failed"
    assert f"cannot connect to 127.0.0.1:{port}" in refused.error

    for path in ("../outside.png", "/tmp/abs.png"):
        outside = await call(registry, ctx, "browser.screenshot", path=path)
        assert outside.status == "failed"
        assert "outside the workspace" in outside.error
    wrong_type = await call(registry, ctx, "browser.screenshot", path="shot.gif")
    assert wrong_type.status == "failed" and ".png" in wrong_type.error


async def test_each_run_has_its_own_browser(
    registry: ActionRegistry, tmp_path: Path, site: str
) -> None:
    first, second = make_ctx(tmp_path), make_ctx(tmp_path)
    try:
        await call(registry, first, "browser.open", url=f"{site}/")
        await call(registry, second, "browser.open", url=f"{site}/other")
        assert {first.run_id, second.run_id} <= set(browser.open_runs())
        assert (await call(registry, first, "browser.text", selector="h1")).output[
            "text"
        ] == "Sign up"
        assert (await call(registry, second, "browser.text")).output["text"] == "page two"

        await browser.close_run(first.run_id)
        assert first.run_id not in browser.open_runs()
        assert second.run_id in browser.open_runs()
        # A later action of a closed run starts a fresh browser, on a blank page.
        fresh = await call(registry, first, "browser.text")
        assert fresh.output["url"] == "about:blank"
    finally:
        await browser.close_all()
    assert browser.open_runs() == []


async def test_missing_chromium_says_how_to_install_it(
    registry: ActionRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, site: str
) -> None:
    monkeypatch.delenv(browser.EXECUTABLE_ENV, raising=False)
    ctx = make_ctx(tmp_path, browser={"executable_path": str(tmp_path / "no-chromium")})
    result = await call(registry, ctx, "browser.open", url=f"{site}/")
    assert result.status == "failed"
    assert "apt-get install chromium" in result.error
    assert "executable_path" in result.error
    assert browser.open_runs() == [] or ctx.run_id not in browser.open_runs()


def _processes_using(marker: str) -> list[int]:
    """Ids of this machine's processes whose command line mentions ``marker``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:
                continue
            if marker.encode() in cmdline:
                pids.append(int(entry.name))
    return pids


def _alive(pid: int) -> bool:
    try:
        return "State:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False


async def test_a_run_whose_browser_died_gets_a_fresh_one(
    registry: ActionRegistry, ctx: ActionContext, site: str
) -> None:
    import asyncio
    import contextlib
    import os
    import signal

    await call(registry, ctx, "browser.open", url=f"{site}/other")
    profile = browser._sessions[ctx.run_id].profile_dir
    chromium = _processes_using(profile)  # the Chromium this test started, by its profile
    assert chromium
    for pid in chromium:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    for _ in range(400):  # bounded wait until the kernel has ended them
        if not any(_alive(pid) for pid in chromium):
            break
        await asyncio.sleep(0.05)

    after = await call(registry, ctx, "browser.text", retries=1)
    assert after.status == "succeeded", after.error
    assert after.output["url"] == "about:blank"  # a fresh browser, not the dead page
    assert browser._sessions[ctx.run_id].profile_dir != profile
    assert not Path(profile).exists()  # the dead browser's profile was removed


# ------------------------------------------------------------- the network rules


async def test_pages_on_this_machine_are_refused_by_default(
    registry: ActionRegistry, tmp_path: Path, site: str
) -> None:
    ctx = make_ctx(tmp_path, network={})
    before = len(HITS)
    try:
        refused = await call(registry, ctx, "browser.open", url=f"{site}/")
        assert refused.status == "failed"
        assert "127.0.0.1 is a loopback address (SSRF protection)" in refused.error
        assert "[network] allow_networks" in refused.error
        assert len(HITS) == before  # the browser never reached the site
    finally:
        await browser.close_run(ctx.run_id)


async def test_a_redirect_to_the_metadata_address_is_refused(
    registry: ActionRegistry, ctx: ActionContext, site: str
) -> None:
    result = await call(registry, ctx, "browser.open", url=f"{site}/to-metadata")
    assert result.status == "failed"
    assert "169.254.169.254 is a link-local address" in result.error


async def test_a_sub_request_to_a_refused_address_is_left_out(
    registry: ActionRegistry, tmp_path: Path, site: str
) -> None:
    ctx = make_ctx(tmp_path, network={"allow_networks": ["127.0.0.1/32"]})
    try:
        opened = await call(registry, ctx, "browser.open", url=f"{site}/pixel-page")
        assert opened.status == "succeeded", opened.error
        assert opened.output["title"] == "Pixel"
        assert "/pixel" not in HITS  # [::ffff:127.0.0.1] is loopback, not 127.0.0.1/32
    finally:
        await browser.close_run(ctx.run_id)


async def test_a_failed_submission_is_not_verified(
    registry: ActionRegistry, ctx: ActionContext, site: str
) -> None:
    opened = await call(registry, ctx, "browser.open", url=f"{site}/broken-form")
    assert opened.status == "succeeded"
    result = await call(registry, ctx, "browser.submit")
    assert result.status == "failed"
    assert "not verified: the site answered the submission with HTTP 500" in result.error


async def test_a_recovered_submit_does_not_submit_again(
    registry: ActionRegistry, ctx: ActionContext, site: str
) -> None:
    spec = registry.get("browser.submit")
    assert spec is not None and spec.delivery == "checked"
    await call(registry, ctx, "browser.open", url=f"{site}/")
    await call(registry, ctx, "browser.fill", selector="#name", value="Ada")
    first = await call(registry, ctx, "browser.submit")
    assert first.status == "succeeded", first.error
    posts = HITS.count("/greet")
    assert spec.find_effect is not None
    assert await spec.find_effect({}, ctx) == first.output
    again = await call(registry, ctx, "browser.submit")  # same idempotency key
    assert again.output == first.output and HITS.count("/greet") == posts
