"""http: fetch a URL with timeouts and a size limit.

The request, and every redirect it follows, goes through :func:`httpkit.client`: the
address rules of ``[network]`` in openlam.toml apply to each hop.
"""

from __future__ import annotations

from typing_extensions import TypedDict

from openlam.actions import httpkit
from openlam.actions.spec import ActionContext, Risk, action
from openlam.errors import ActionError

MAX_BYTES = 5_000_000
TIMEOUT = 20.0  # seconds for the whole exchange; connecting may take 5 of them


class Page(TypedDict):
    url: str
    status: int
    content_type: str
    text: str
    bytes: int


@action("http.get", risk=Risk.read, idempotent=True, egress=True)
async def get(ctx: ActionContext, url: str, max_bytes: int = MAX_BYTES) -> Page:
    """Fetch a URL over HTTP(S) and return its text.

    Args:
        url: The http:// or https:// address.
        max_bytes: Refuse bodies larger than this many bytes.
    """
    if not url.startswith(("http://", "https://")):
        raise ActionError(f"{url!r} is not an http(s) URL")
    reply = await httpkit.send(
        ctx.settings, "GET", url, what=url, idempotent=True, max_bytes=max_bytes, deadline=TIMEOUT
    )
    if reply.status >= 400:
        # a 5xx is retried; a 4xx (429 included) fails the step, as http.get always did
        raise httpkit.status_error(url, reply.status, transient=reply.status >= 500)
    return {
        "url": reply.url,
        "status": reply.status,
        "content_type": reply.headers.get("content-type", ""),
        "text": reply.text(),
        "bytes": len(reply.body),
    }
