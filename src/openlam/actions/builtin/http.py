"""http: fetch a URL with timeouts and a size limit."""

from __future__ import annotations

import httpx
from typing_extensions import TypedDict

from openlam.actions.spec import Risk, action
from openlam.errors import ActionError

MAX_BYTES = 5_000_000
TIMEOUT = httpx.Timeout(20.0, connect=5.0)


class Page(TypedDict):
    url: str
    status: int
    content_type: str
    text: str
    bytes: int


@action("http.get", risk=Risk.read, idempotent=True)
async def get(url: str, max_bytes: int = MAX_BYTES) -> Page:
    """Fetch a URL over HTTP(S) and return its text.

    Args:
        url: The http:// or https:// address.
        max_bytes: Refuse bodies larger than this many bytes.
    """
    if not url.startswith(("http://", "https://")):
        raise ActionError(f"{url!r} is not an http(s) URL")
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=True,
                                     max_redirects=5) as client, \
                client.stream("GET", url) as response:
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body.extend(chunk)
                if len(body) > max_bytes:
                    raise ActionError(f"{url} is larger than {max_bytes} bytes")
    except httpx.TimeoutException:
        raise ActionError(f"{url} did not answer in time", transient=True) from None
    except httpx.TransportError as exc:
        raise ActionError(f"cannot reach {url}: {exc}", transient=True) from None
    if response.status_code >= 500:
        raise ActionError(f"{url} answered HTTP {response.status_code}", transient=True)
    if response.status_code >= 400:
        raise ActionError(f"{url} answered HTTP {response.status_code}")
    return {"url": str(response.url), "status": response.status_code,
            "content_type": response.headers.get("content-type", ""),
            "text": body.decode(response.encoding or "utf-8", errors="replace"),
            "bytes": len(body)}
