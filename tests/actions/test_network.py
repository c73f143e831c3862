"""One outbound-HTTP chokepoint: every action's request — and every redirect hop — is
resolved, every address checked against [network], and the connection pinned to the
checked address."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from openlam.actions import httpkit, network
from openlam.actions.builtin import http
from openlam.actions.network import AddressRefused, NetworkRules
from openlam.actions.spec import ActionContext
from openlam.errors import ActionError
from tests.fakes.action_ctx import action_context
from tests.fakes.http import FakeHTTPServer, Response

GET = http.get.__openlam_action__  # type: ignore[attr-defined]
LOCAL = '[network]\nallow_networks = ["127.0.0.0/8", "::1/128"]\n'


class Site:
    """/page answers; /redirect?to=URL redirects there."""

    def __init__(self) -> None:
        self.server = FakeHTTPServer(self.handle)

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Response:
        parts = urlsplit(path)
        if parts.path == "/redirect":
            return 302, {"Location": parse_qs(parts.query)["to"][0]}, b""
        return 200, {"Content-Type": "text/plain"}, f"page for {headers.get('host')}".encode()

    @property
    def port(self) -> int:
        return int(self.server.server.server_address[1])

    @property
    def url(self) -> str:
        return self.server.url

    def hits(self) -> int:
        return len(self.server.requests)


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    s = Site()
    with s.server:
        yield s


async def get(ctx: ActionContext, url: str) -> dict[str, Any]:
    return await GET.call(ctx, {"url": url})


async def test_http_get_to_loopback_is_refused_by_default(site: Site, workspace: Path) -> None:
    before = site.hits()
    with pytest.raises(AddressRefused) as refused:
        await get(action_context(workspace), f"{site.url}/page")
    message = str(refused.value)
    assert "127.0.0.1 is a loopback address (SSRF protection)" in message
    assert 'add "127.0.0.1/32" to [network] allow_networks in openlam.toml' in message
    assert not refused.value.transient
    assert site.hits() == before  # refused before connecting


async def test_http_get_is_allowed_by_the_setting(site: Site, workspace: Path) -> None:
    page = await get(action_context(workspace, LOCAL), f"{site.url}/page")
    assert page["status"] == 200
    # [web] allow_private, from before [network], is still honoured
    old = await get(action_context(workspace, "[web]\nallow_private = true\n"), f"{site.url}/page")
    assert old["status"] == 200
    named = await get(
        action_context(workspace, '[network]\nallow_hosts = ["localhost"]\n'),
        f"http://localhost:{site.port}/page",
    )
    assert named["text"] == f"page for localhost:{site.port}"


@pytest.mark.parametrize(
    "target",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/",
        "http://[fd00:ec2::254]/",
        "http://[::ffff:169.254.169.254]/",
    ],
)
async def test_a_redirect_from_an_allowed_host_is_checked(
    site: Site, workspace: Path, target: str
) -> None:
    ctx = action_context(workspace, LOCAL)
    before = site.hits()
    with pytest.raises(AddressRefused) as refused:
        await get(ctx, f"{site.url}/redirect?to={target}")
    host = urlsplit(target).hostname
    assert f"{host} is a" in str(refused.value)
    assert site.hits() - before == 1  # the allowed hop, and nothing after it


@pytest.mark.parametrize(
    ("form", "kind"),
    [
        ("[::127.0.0.1]", "loopback"),
        ("[::ffff:127.0.0.1]", "loopback"),
        ("0.0.0.0", "unspecified"),
        ("2130706433", "loopback"),
        ("127.1", "loopback"),
        ("0x7f.1", "loopback"),
        ("localhost", "loopback"),
        ("[::1]", "loopback"),
    ],
)
async def test_every_spelling_of_this_machine_is_refused(
    site: Site, workspace: Path, form: str, kind: str
) -> None:
    before = site.hits()
    with pytest.raises(AddressRefused, match=f"a {kind} address"):
        await get(action_context(workspace), f"http://{form}:{site.port}/page")
    assert site.hits() == before


async def test_octal_ipv4_is_not_a_way_around(site: Site, workspace: Path) -> None:
    with pytest.raises(ActionError, match=r"unusable address|not a valid"):
        await get(action_context(workspace), f"http://0177.0.0.1:{site.port}/page")


async def test_every_address_of_a_name_is_checked(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def resolve(host: str, port: int) -> list[network.IPAddress]:
        return [ipaddress.ip_address("93.184.215.14"), ipaddress.ip_address("10.1.2.3")]

    monkeypatch.setattr(network, "resolve", resolve)
    with pytest.raises(
        AddressRefused,
        match=r"mixed\.test resolves to 10\.1\.2\.3, a private "
        r"address.*or \"mixed\.test\" to \[network\] "
        "allow_hosts",
    ):
        await get(action_context(workspace), "http://mixed.test/")


async def test_the_connection_goes_to_the_checked_address(
    site: Site, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # rebind.test is in no DNS: the request succeeds only if it connects to the address
    # the check resolved (once) instead of resolving the name again.
    answers: list[str] = []

    async def resolve(host: str, port: int) -> list[network.IPAddress]:
        answers.append(host)
        return [ipaddress.ip_address("127.0.0.1")]

    monkeypatch.setattr(network, "resolve", resolve)
    page = await get(action_context(workspace, LOCAL), f"http://rebind.test:{site.port}/page")
    assert page["text"] == f"page for rebind.test:{site.port}"
    assert answers == ["rebind.test"]


async def test_the_client_for_other_actions(site: Site, workspace: Path) -> None:
    """What OpenAPI and MCP use: the same rules, and the user's own endpoint trusted."""
    settings = action_context(workspace).settings
    async with httpkit.client(settings) as client:
        with pytest.raises(AddressRefused):
            await client.get(f"{site.url}/page")
    async with httpkit.client(settings, configured=[site.url]) as client:
        assert (await client.get(f"{site.url}/page")).status_code == 200
        with pytest.raises(AddressRefused, match=r"169\.254\.169\.254"):  # redirects checked
            await client.get(f"{site.url}/redirect?to=http://169.254.169.254/")
    import httpx2  # the fork the MCP SDK speaks

    async with httpkit.client(settings, configured=[site.url], library=httpx2) as client:
        assert (await client.get(f"{site.url}/page")).status_code == 200
    async with httpx.AsyncClient(transport=httpkit.transport(rules=NetworkRules())) as plain:
        with pytest.raises(AddressRefused):
            await plain.get(f"{site.url}/page")


def test_invalid_network_table_names_the_setting(workspace: Path) -> None:
    for toml in (
        '[network]\nallow_private = "yes"\n',
        '[network]\nallow_networks = "10/8"\n',
        '[network]\nallow_networks = ["not-a-net"]\n',
    ):
        with pytest.raises(ActionError, match=r"\[network\] in openlam.toml is invalid"):
            NetworkRules.from_settings(action_context(workspace, toml).settings)


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("::127.0.0.1", "loopback"),
        ("::10.0.0.1", "private"),
        ("::8.8.8.8", "reserved"),
        ("fd00:ec2::254", "private"),
        ("64:ff9b:1::a00:1", "private"),
        ("::", "unspecified"),
        ("::1", "loopback"),
        ("169.254.169.254", "link-local"),
        ("8.8.8.8", None),
    ],
)
def test_address_kinds(address: str, kind: str | None) -> None:
    assert network.non_public_kind(ipaddress.ip_address(address)) == kind
