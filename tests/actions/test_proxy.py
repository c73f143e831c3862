"""The browser's proxy, spoken to directly: refusals, tunnels, one request per connection."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Iterator

import pytest

from openlam.actions.network import NetworkRules
from openlam.actions.proxy import GuardProxy
from tests.fakes.http import FakeHTTPServer

LOCAL = NetworkRules(allow_networks=(ipaddress.ip_network("127.0.0.1/32"),))


@pytest.fixture(scope="module")
def site() -> Iterator[FakeHTTPServer]:
    server = FakeHTTPServer(
        lambda _m, path, headers, _b: (
            200,
            {"Content-Type": "text/plain", "Connection": "keep-alive"},
            f"{path} for {headers.get('host')}".encode(),
        )
    )
    with server:
        yield server


async def exchange(proxy: GuardProxy, request: bytes) -> bytes:
    """Send ``request`` to the proxy and read until it closes the connection."""
    host, port = proxy.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(request)
    try:
        return await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()


async def test_a_refused_address_is_answered_403_with_the_reason(site: FakeHTTPServer) -> None:
    refusals: list[str] = []
    async with GuardProxy(NetworkRules(), on_refused=refusals.append) as proxy:
        before = len(site.requests)
        answer = await exchange(proxy, f"GET {site.url}/x HTTP/1.1\r\nHost: h\r\n\r\n".encode())
        tunnel = await exchange(proxy, b"CONNECT 169.254.169.254:443 HTTP/1.1\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 403 Forbidden")
    assert b"X-OpenLAM-Proxy: refused" in answer
    assert b"127.0.0.1 is a loopback address" in answer
    assert tunnel.startswith(b"HTTP/1.1 403") and b"link-local" in tunnel
    assert len(refusals) == 2 and len(site.requests) == before


async def test_one_checked_request_per_connection(site: FakeHTTPServer) -> None:
    port = site.server.server_address[1]
    async with GuardProxy(LOCAL) as proxy:
        # Two requests down one connection, the second for a refused host: the proxy
        # answers the first with Connection: close and never forwards the second.
        both = (
            f"GET http://127.0.0.1:{port}/one HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Proxy-Connection: keep-alive\r\n\r\n"
            f"GET http://127.0.0.2:{port}/two HTTP/1.1\r\nHost: 127.0.0.2\r\n\r\n"
        )
        before = len(site.requests)
        answer = await exchange(proxy, both.encode())
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert b"Connection: close" in head and b"keep-alive" not in head
    assert body == f"/one for 127.0.0.1:{port}".encode()
    assert [path for _m, path, _b in site.requests[before:]] == ["/one"]


async def test_an_allowed_tunnel_carries_bytes_both_ways(site: FakeHTTPServer) -> None:
    port = site.server.server_address[1]
    async with GuardProxy(LOCAL) as proxy:
        answer = await exchange(
            proxy,
            (
                f"CONNECT 127.0.0.1:{port} HTTP/1.1\r\n\r\n"
                f"GET /tunnelled HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
            ).encode(),
        )
    assert answer.startswith(b"HTTP/1.1 200 Connection Established\r\n\r\nHTTP/1.1 200")
    assert answer.endswith(b"/tunnelled for t")
