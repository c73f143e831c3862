"""web.fetch against a local web site: readable content, limits, and SSRF refusal."""

from __future__ import annotations

import gzip
import ipaddress
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from openlam.actions import network
from openlam.actions.builtin import web
from openlam.actions.registry import load_plugins
from openlam.actions.spec import ActionContext, Risk
from openlam.errors import ActionError
from openlam.loop.act import execute
from tests.fakes.action_ctx import action_context
from tests.fakes.http import FakeHTTPServer, Response
from tests.fakes.tls_certs import TestCA

SPEC = web.fetch.__openlam_action__  # type: ignore[attr-defined]

PAGE = b"""<!doctype html>
<html><head><title>Anvils &amp; More</title><style>body{color:red}</style>
<script>var secretTracking = 1;</script></head>
<body>
<nav><a href="/">Home</a> <a href="/about#team">About us</a></nav>
<main>
  <h1>Acme anvils</h1>
  <p>Acme sells <strong>drop-forged</strong> anvils. See the <a href="specs.html">specs</a>.</p>
  <ul><li>Model A: 50 kg</li><li>Model B: 75 kg</li></ul>
  <img src="data:image/png;base64,AAAA" alt="an anvil">
  <p><a href="mailto:sales@acme.test">Write to us</a></p>
</main>
<footer>Copyright Acme</footer>
</body></html>"""


class Site:
    """A local site with pages, redirects, big and slow answers."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.server = FakeHTTPServer(self.handle)
        self.other_host_url = ""

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Response:
        html = {"Content-Type": "text/html; charset=utf-8"}
        if path == "/page":
            return 200, html, PAGE
        if path == "/host":
            return 200, {"Content-Type": "text/plain"}, headers.get("host", "").encode()
        if path == "/old":
            return 302, {"Location": "/page"}, b""
        if path.startswith("/loop"):
            return 302, {"Location": "/loop"}, b""
        if path == "/elsewhere":
            return 301, {"Location": self.other_host_url + "/page"}, b""
        if path == "/big":
            return 200, html, b"<p>" + b"x" * 50_000 + b"</p>"
        if path == "/bomb":  # small on the wire, large once decompressed
            payload = gzip.compress(b"<p>" + b"a" * 500_000 + b"</p>")
            return 200, {**html, "Content-Encoding": "gzip"}, payload
        if path == "/sloppy":  # unclosed tags: html.parser nests each in the one before
            return 200, html, b"<body><h1>Old page</h1>" + b"<p>para <a href=/x>link</a> " * 600
        if path == "/deep":
            return 200, html, b"<body>" + b"<div>" * 60_000 + b"deep text" + b"</div>" * 60_000
        if path == "/slow":
            self.release.wait(20)
            return 200, html, PAGE
        if path == "/logo.png":
            return 200, {"Content-Type": "image/png"}, b"\x89PNG\r\n\x1a\n"
        if path == "/notes.txt":
            return 200, {"Content-Type": "text/plain; charset=utf-8"}, "Grüße".encode()
        return 404, {"Content-Type": "text/html"}, b"<h1>Not here</h1>"

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def port(self) -> int:
        return int(self.server.server.server_address[1])

    def hits(self) -> int:
        return len(self.server.requests)


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    s = Site()
    with s.server:
        yield s
        s.release.set()


def ctx_with(workspace: Path, web_table: str) -> ActionContext:
    return action_context(workspace, f"[web]\n{web_table}\n")


async def fetch(ctx: ActionContext, **args: object) -> dict:
    return await SPEC.call(ctx, args)


async def test_fetches_readable_markdown_title_and_absolute_links(
    site: Site, workspace: Path
) -> None:
    ctx = ctx_with(workspace, "allow_private = true")
    page = await fetch(ctx, url=site.url + "/page")
    assert page["status"] == 200
    assert page["title"] == "Anvils & More"
    assert page["content"].startswith("# Acme anvils")
    assert "**drop-forged**" in page["content"]
    assert f"[specs]({site.url}/specs.html)" in page["content"]
    assert "- Model A: 50 kg" in page["content"]
    for boilerplate in ("secretTracking", "color:red", "Copyright", "About us", "data:image"):
        assert boilerplate not in page["content"]
    urls = [link["url"] for link in page["links"]]
    assert urls == [site.url + "/", site.url + "/about", site.url + "/specs.html"]
    assert page["links"][1]["text"] == "About us"
    assert page["truncated"] is False


async def test_text_format_and_truncation(site: Site, workspace: Path) -> None:
    ctx = ctx_with(workspace, "allow_private = true")
    page = await fetch(ctx, url=site.url + "/page", format="text", include_links=False)
    assert page["content"] == (
        "Acme anvils\nAcme sells drop-forged anvils. See the specs.\n"
        "Model A: 50 kg\nModel B: 75 kg\nWrite to us"
    )
    assert page["truncated"] is False
    page = await fetch(
        ctx, url=site.url + "/page", format="text", max_chars=30, include_links=False
    )
    assert page["content"] == "Acme anvils\nAcme sells drop-fo"
    assert page["truncated"] is True
    assert page["links"] == []


@pytest.mark.timeout(60)
async def test_deeply_nested_pages_are_read(site: Site, workspace: Path) -> None:
    """A page is untrusted and sloppy HTML nests deep: the Markdown converter recursed
    past Python's limit at ≈ 500 levels (600 unclosed <p>), and the plain-text walk took
    time quadratic in the depth (60,000 nested <div>: minutes)."""
    ctx = ctx_with(workspace, "allow_private = true")
    sloppy = await fetch(ctx, url=site.url + "/sloppy")
    assert sloppy["content"].startswith("Old page\npara link\npara link")
    assert sloppy["content"].count("para link") == 600
    assert len(sloppy["links"]) == 1
    for fmt in ("markdown", "text"):
        deep = await fetch(ctx, url=site.url + "/deep", format=fmt)
        assert deep["content"] == "deep text"


async def test_plain_text_is_returned_as_is(site: Site, workspace: Path) -> None:
    page = await fetch(ctx_with(workspace, "allow_private = true"), url=site.url + "/notes.txt")
    assert page["content"] == "Grüße"
    assert page["content_type"] == "text/plain"


async def test_follows_redirects_and_reports_them(site: Site, workspace: Path) -> None:
    page = await fetch(ctx_with(workspace, "allow_private = true"), url=site.url + "/old")
    assert page["url"] == site.url + "/page"
    assert page["requested_url"] == site.url + "/old"
    assert page["redirects"] == [site.url + "/old"]
    assert page["title"] == "Anvils & More"


async def test_redirect_loop_is_cut_at_the_limit(site: Site, workspace: Path) -> None:
    before = site.hits()
    ctx = ctx_with(workspace, "allow_private = true\nmax_redirects = 3")
    with pytest.raises(ActionError, match=r"redirected more than 3 times \(\[web\] max_redirects"):
        await fetch(ctx, url=site.url + "/loop")
    assert site.hits() - before == 4


async def test_loopback_is_refused_without_allow_private(site: Site, workspace: Path) -> None:
    before = site.hits()
    with pytest.raises(ActionError) as caught:
        await fetch(ctx_with(workspace, ""), url=site.url + "/page")
    message = str(caught.value)
    assert "127.0.0.1 is a loopback address (SSRF protection)" in message
    assert 'add "127.0.0.1/32" to [network] allow_networks in openlam.toml' in message
    assert caught.value.transient is False
    assert site.hits() == before  # refused before any connection


async def test_every_redirect_hop_is_checked(site: Site, workspace: Path) -> None:
    # 127.0.0.1 is allowed by network; the redirect goes to 127.0.0.2, which is not.
    site.other_host_url = f"http://127.0.0.2:{site.port}"
    ctx = ctx_with(workspace, 'allow_networks = ["127.0.0.1/32"]')
    before = site.hits()
    with pytest.raises(ActionError, match=r"127\.0\.0\.2 is a loopback address"):
        await fetch(ctx, url=site.url + "/elsewhere")
    assert site.hits() - before == 1


async def test_connects_to_the_checked_address_keeping_the_host_name(
    site: Site, workspace: Path
) -> None:
    ctx = ctx_with(workspace, 'allow_networks = ["127.0.0.0/8", "::1/128"]')
    page = await fetch(ctx, url=f"http://localhost:{site.port}/host")
    assert page["content"] == f"localhost:{site.port}"


async def test_connection_goes_to_the_address_that_was_checked(
    site: Site, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # anvils.test exists in no DNS: the fetch can only succeed if it connects to the
    # address the check approved instead of resolving the name a second time.
    async def resolve(host: str, port: int) -> list[network.IPAddress]:
        assert (host, port) == ("anvils.test", site.port)
        return [ipaddress.ip_address("127.0.0.1")]

    monkeypatch.setattr(network, "resolve", resolve)
    ctx = ctx_with(workspace, 'allow_networks = ["127.0.0.1/32"]')
    page = await fetch(ctx, url=f"http://anvils.test:{site.port}/host")
    assert page["content"] == f"anvils.test:{site.port}"
    assert page["url"] == f"http://anvils.test:{site.port}/host"


@pytest.fixture(scope="module")
def https_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestCA, int]]:
    """A TLS server on 127.0.0.1 whose certificate names anvils.test, from a private CA."""
    ca = TestCA(tmp_path_factory.mktemp("tls"))
    server = FakeHTTPServer(
        lambda _m, _p, headers, _b: (
            200,
            {"Content-Type": "text/plain"},
            headers.get("host", "").encode(),
        )
    )
    server.server.socket = ca.server_context("anvils.test").wrap_socket(
        server.server.socket, server_side=True
    )
    with server:
        yield ca, int(server.server.server_address[1])


async def test_https_to_the_checked_address_verifies_the_name(
    https_site: tuple[TestCA, int], workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca, port = https_site

    async def resolve(host: str, port: int) -> list[network.IPAddress]:
        return [ipaddress.ip_address("127.0.0.1")]

    monkeypatch.setattr(network, "resolve", resolve)
    (workspace / "ca.pem").write_bytes(ca.pem.read_bytes())
    trusted = ctx_with(workspace, 'allow_networks = ["127.0.0.1/32"]\nca_file = "ca.pem"')
    page = await fetch(trusted, url=f"https://anvils.test:{port}/host")
    assert page["content"] == f"anvils.test:{port}"
    # The same server under another name: its certificate does not cover that name.
    with pytest.raises(ActionError, match=r"TLS connection to https://other\.test") as wrong:
        await fetch(trusted, url=f"https://other.test:{port}/host")
    assert "Hostname mismatch" in str(wrong.value)
    assert not wrong.value.transient
    # Without the private CA the certificate is not trusted at all.
    untrusted = ctx_with(workspace, 'allow_networks = ["127.0.0.1/32"]')
    with pytest.raises(ActionError, match="certificate") as unknown:
        await fetch(untrusted, url=f"https://anvils.test:{port}/host")
    assert not unknown.value.transient


async def test_oversized_response_fails_with_the_limit(site: Site, workspace: Path) -> None:
    ctx = ctx_with(workspace, "allow_private = true\nmax_bytes = 10000")
    with pytest.raises(ActionError, match=r"sent 50007 bytes, more than the limit of 10000"):
        await fetch(ctx, url=site.url + "/big")


async def test_decompressed_size_counts(site: Site, workspace: Path) -> None:
    ctx = ctx_with(workspace, "allow_private = true\nmax_bytes = 100000")
    with pytest.raises(ActionError, match=r"more than the limit of 100000 bytes"):
        await fetch(ctx, url=site.url + "/bomb")


async def test_slow_page_is_a_failed_step_naming_the_timeout(site: Site, workspace: Path) -> None:
    ctx = ctx_with(workspace, "allow_private = true\ntimeout = 0.5")
    result = await execute(SPEC, ctx, {"url": site.url + "/slow"}, timeout=10, retries=0)
    assert result.status == "failed"
    assert "did not finish loading within 0.5s ([web] timeout)" in result.error


async def test_http_errors_and_non_text_are_failures(site: Site, workspace: Path) -> None:
    ctx = ctx_with(workspace, "allow_private = true")
    with pytest.raises(ActionError, match=r"answered HTTP 404"):
        await fetch(ctx, url=site.url + "/missing")
    with pytest.raises(ActionError, match=r"is image/png, not a web page or text"):
        await fetch(ctx, url=site.url + "/logo.png")


async def test_refused_connection_is_transient(workspace: Path) -> None:
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ActionError, match="cannot connect") as caught:
        await fetch(ctx_with(workspace, "allow_private = true"), url=f"http://127.0.0.1:{port}/")
    assert caught.value.transient is True


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.org/x", "not a url"])
async def test_only_http_urls(url: str, workspace: Path) -> None:
    with pytest.raises(ActionError, match="not an http"):
        await fetch(ctx_with(workspace, "allow_private = true"), url=url)


async def test_invalid_web_table_names_the_setting(workspace: Path) -> None:
    with pytest.raises(ActionError, match=r"\[web\] in openlam.toml is invalid"):
        await fetch(ctx_with(workspace, 'allow_private = "yes"'), url="http://127.0.0.1/")


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("10.1.2.3", "private"),
        ("192.168.0.1", "private"),
        ("169.254.169.254", "link-local"),
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("fe80::1", "link-local"),
        ("fc00::5", "private"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("100.64.0.1", "reserved"),
        ("::ffff:127.0.0.1", "loopback"),
        ("2002:7f00:1::", "loopback"),
        ("64:ff9b::a00:1", "private"),
        ("93.184.215.14", None),
        ("2606:4700:4700::1111", None),
    ],
)
def test_address_classes(address: str, kind: str | None) -> None:
    assert network.non_public_kind(ipaddress.ip_address(address)) == kind


def test_registered_through_the_entry_point() -> None:
    spec = load_plugins().get("web.fetch")
    assert spec is not None
    assert spec.risk is Risk.read
    assert spec.idempotent
    assert set(spec.input_schema["properties"]) == {"url", "format", "max_chars", "include_links"}
