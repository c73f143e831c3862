"""web: fetch a web page and return its readable content, title and links.

Limits come from ``[web]`` in openlam.toml: ``max_bytes`` (body size after
decompression), ``timeout`` (seconds for the whole fetch, redirects included),
``max_redirects``, ``user_agent`` and ``ca_file`` (a PEM file of extra certificate
authorities).

Which addresses may be fetched is decided by ``[network]`` (see
:mod:`openlam.actions.network`): every hop — the first request and each redirect — goes
through :func:`openlam.actions.httpkit.client`, which resolves the host, checks every
address and connects to the checked one.
"""

from __future__ import annotations

import asyncio
import re
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal
from urllib.parse import urldefrag, urljoin

from pydantic import NonNegativeInt, PositiveFloat, PositiveInt, StrictBool
from typing_extensions import TypedDict

from openlam.actions import httpkit
from openlam.actions.network import NetworkRules
from openlam.actions.plugin_config import PluginConfig, settings_of
from openlam.actions.spec import ActionContext, Risk, action
from openlam.actions.threads import in_action_thread
from openlam.errors import ActionError

if TYPE_CHECKING:  # bs4 and markdownify load on the first page read (start-up, memory)
    import httpx
    from bs4 import BeautifulSoup, Tag
    from bs4.element import PageElement

REDIRECTS = frozenset({301, 302, 303, 307, 308})
HTML_TYPES = ("text/html", "application/xhtml+xml")
TEXT_TYPES = (
    "application/json",
    "application/xml",
    "application/javascript",
    "application/x-yaml",
    "application/yaml",
)
DROPPED_TAGS = [
    "script",
    "style",
    "noscript",
    "template",
    "svg",
    "canvas",
    "iframe",
    "object",
    "embed",
    "head",
]
BOILERPLATE_TAGS = ["nav", "footer", "aside"]
MAX_MARKDOWN_DEPTH = 150
BLOCK_TAGS = [
    "p",
    "div",
    "section",
    "article",
    "main",
    "header",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "li",
    "dt",
    "dd",
    "tr",
    "pre",
    "blockquote",
    "br",
    "hr",
    "table",
    "ul",
    "ol",
    "dl",
    "figure",
    "figcaption",
    "form",
    "fieldset",
    "address",
]
MAX_LINKS = 200


class Link(TypedDict):
    text: str
    url: str


class WebPage(TypedDict):
    url: str
    requested_url: str
    redirects: list[str]
    status: int
    content_type: str
    title: str
    format: str
    content: str
    truncated: bool
    links: list[Link]


class WebConfig(PluginConfig):
    """The ``[web]`` table of openlam.toml."""

    section: ClassVar[str] = "web"
    hint: ClassVar[str] = (
        "max_bytes and max_redirects are whole numbers, timeout seconds, ca_file a PEM file"
    )

    max_bytes: PositiveInt = 5_000_000
    timeout: PositiveFloat = 20.0
    max_redirects: NonNegativeInt = 5
    user_agent: str = "OpenLAM/0.1 (web.fetch)"
    ca_file: str = ""
    # deprecated aliases of [network]'s keys, read by NetworkRules
    allow_private: StrictBool = False
    allow_networks: list[str] = []


CONFIG = WebConfig


@dataclass(frozen=True)
class WebPolicy:
    """How one fetch runs: ``[web]``, and the workspace's address rules."""

    network: NetworkRules = field(default_factory=NetworkRules)
    max_bytes: int = 5_000_000
    timeout: float = 20.0
    max_redirects: int = 5
    user_agent: str = "OpenLAM/0.1 (web.fetch)"
    ca_file: Path | None = None

    @classmethod
    def from_settings(cls, settings: Any) -> WebPolicy:
        settings = settings_of(settings)
        config = WebConfig.of(settings)
        ca_file = None
        if config.ca_file:
            ca_file = (settings.workspace / config.ca_file).resolve()
            if not ca_file.is_file():
                raise ActionError(
                    f"[web] in openlam.toml is invalid: ca_file {ca_file} does not exist"
                )
        return cls(
            NetworkRules.from_settings(settings),
            config.max_bytes,
            config.timeout,
            config.max_redirects,
            config.user_agent,
            ca_file,
        )

    def tls(self) -> ssl.SSLContext | bool:
        """Certificate verification: the system's CAs, plus ``ca_file`` if set."""
        if self.ca_file is None:
            return True
        context = ssl.create_default_context()
        context.load_verify_locations(cafile=str(self.ca_file))
        return context


@action("web.fetch", risk=Risk.read, idempotent=True, egress=True)
async def fetch(
    ctx: ActionContext,
    url: str,
    format: Literal["markdown", "text"] = "markdown",
    max_chars: int = 20_000,
    include_links: bool = True,
) -> WebPage:
    """Fetch a web page and return its readable content (Markdown or plain text), title and links.

    Scripts, styles and navigation are left out; links are absolute. Pages on private or
    loopback addresses are refused unless [network] in openlam.toml allows them.

    Args:
        url: The http:// or https:// address of the page.
        format: "markdown" keeps headings, lists, links and tables; "text" is plain text.
        max_chars: Cut the content after this many characters (truncated is then true).
        include_links: Also return the page's links (up to 200).
    """
    if not 1 <= max_chars <= 1_000_000:
        raise ActionError("max_chars must be between 1 and 1000000")
    policy = WebPolicy.from_settings(ctx)
    try:
        async with asyncio.timeout(policy.timeout):
            return await _fetch(url, policy, format, max_chars, include_links)
    except TimeoutError:
        raise ActionError(
            f"{url} did not finish loading within {policy.timeout:g}s ([web] timeout)",
            transient=True,
        ) from None


async def _fetch(
    url: str, policy: WebPolicy, fmt: str, max_chars: int, include_links: bool
) -> WebPage:
    current = _parse_url(url)
    hops: list[str] = []
    reply: httpkit.Reply | None = None
    async with httpkit.client(
        rules=policy.network, timeout=policy.timeout, verify=policy.tls(), follow_redirects=False
    ) as client:
        for _ in range(policy.max_redirects + 1):
            reply, location = await _get(client, current, policy)
            if location is None:
                break
            hops.append(str(current))
            current = _parse_url(urljoin(str(current), location), redirected_from=str(current))
        else:
            raise ActionError(
                f"{url} redirected more than {policy.max_redirects} times ([web] max_redirects)"
            )
    assert reply is not None
    final = str(current)
    if reply.status >= 400:
        raise httpkit.status_error(final, reply.status)
    content_type = reply.headers.get("content-type", "").split(";")[0].strip().lower()
    title, links = "", []
    if content_type in HTML_TYPES or (not content_type and reply.body.lstrip()[:1] == b"<"):
        # seconds of CPU for a large page (5 MB: ≈ 10 s): off the event loop, so the
        # process's other runs go on meanwhile
        title, content, links = await in_action_thread(
            read_html, reply.body, reply.encoding, final, fmt
        )
    elif _is_text(content_type):
        content = reply.text()
    else:
        raise ActionError(
            f"{final} is {content_type or 'of unknown type'}, not a web page or "
            "text; web.fetch reads HTML and text only"
        )
    return {
        "url": final,
        "requested_url": url,
        "redirects": hops,
        "status": reply.status,
        "content_type": content_type,
        "title": title,
        "format": fmt,
        "content": content[:max_chars],
        "truncated": len(content) > max_chars,
        "links": links if include_links else [],
    }


def _parse_url(url: str, redirected_from: str | None = None) -> httpx.URL:
    import httpx  # here, not at import: loading the actions needs no HTTP client

    where = f" (redirect from {redirected_from})" if redirected_from else ""
    try:
        parsed = httpx.URL(url.strip())
    except httpx.InvalidURL as exc:
        raise ActionError(f"{url!r} is not a valid URL{where}: {exc}") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ActionError(f"{url!r} is not an http(s) URL with a host{where}")
    return parsed


def _is_text(content_type: str) -> bool:
    return (
        content_type.startswith("text/")
        or content_type in TEXT_TYPES
        or content_type.endswith(("+json", "+xml"))
    )


async def _get(
    client: httpx.AsyncClient, url: httpx.URL, policy: WebPolicy
) -> tuple[httpkit.Reply | None, str | None]:
    """One hop: returns (reply, None) for a final answer or (None, location) for a redirect."""
    import httpx

    headers = {
        "User-Agent": policy.user_agent,
        "Accept": "text/html,application/xhtml+xml,text/plain;q=0.9,*/*;q=0.5",
    }
    try:
        async with client.stream("GET", url, headers=headers) as response:
            location = response.headers.get("location")
            if response.status_code in REDIRECTS and location:
                return None, location
            body = await httpkit.read_body(response, max_bytes=policy.max_bytes, what=str(url))
            return httpkit.Reply(
                response.status_code, response.headers, body, str(url), response.charset_encoding
            ), None
    except httpx.HTTPError as exc:
        raise httpkit.transport_error(exc, str(url), idempotent=True) from None


def read_html(body: bytes, charset: str | None, base: str, fmt: str) -> tuple[str, str, list[Link]]:
    """Title, readable content and absolute links of an HTML document."""
    from bs4 import BeautifulSoup, Tag
    from markdownify import MarkdownConverter

    soup = BeautifulSoup(body, "html.parser", from_encoding=charset)
    base_tag = soup.find("base", href=True)
    if isinstance(base_tag, Tag):
        base = urljoin(base, str(base_tag.get("href")))
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    for tag in soup(DROPPED_TAGS):
        tag.decompose()
    links: list[Link] = []
    seen: set[str] = set()
    for anchor in soup.find_all("a", href=True):
        if not isinstance(anchor, Tag):
            continue
        href = urldefrag(urljoin(base, str(anchor.get("href")).strip())).url
        if not href.startswith(("http://", "https://")):
            continue
        anchor["href"] = href
        if href not in seen and len(links) < MAX_LINKS:
            seen.add(href)
            links.append({"text": anchor.get_text(" ", strip=True)[:200], "url": href})
    main = _main_part(soup)
    # the Markdown converter recurses (a frame or two a level): a page nested deeper is
    # read as plain text, which has no such limit
    if fmt == "markdown" and not _deeper_than(main, MAX_MARKDOWN_DEPTH):
        content = MarkdownConverter(
            heading_style="ATX", bullets="-", strip=["img"], escape_underscores=False
        ).convert_soup(main)
    else:
        content = plain_text(main)
    content = re.sub(r"(?<![ \t])[ \t]+\n", "\n", content)  # from a run's start: linear
    content = re.sub(r"\n{3,}", "\n\n", content).strip()
    if not title:
        heading = soup.find("h1")
        title = heading.get_text(" ", strip=True) if heading else ""
    return title, content, links


def plain_text(root: Tag) -> str:
    """Text with one line per block (paragraph, heading, list item, row), inline
    elements kept within their line. The tree is walked with a list, not by recursion:
    sloppy HTML nests deep (600 unclosed <p> are 600 levels), and a page is untrusted."""
    from bs4 import CData, Tag
    from bs4.element import NavigableString

    parts: list[str] = []
    pending: list[PageElement | None] = [root]  # None: the end of a block
    while pending:
        node = pending.pop()
        if node is None:
            parts.append("\n")
        elif isinstance(node, Tag):
            if node.name in BLOCK_TAGS:
                parts.append("\n")
                pending.append(None)
            pending.extend(reversed(node.contents))
        elif type(node) in (NavigableString, CData):
            parts.append(str(node))
    lines = (" ".join(line.split()) for line in "".join(parts).splitlines())
    return "\n".join(line for line in lines if line)


def _deeper_than(root: Tag, limit: int) -> bool:
    """Whether any element under ``root`` is nested more than ``limit`` levels deep."""
    from bs4 import Tag

    pending = [(root, 0)]
    while pending:
        node, depth = pending.pop()
        if depth > limit:
            return True
        pending.extend((child, depth + 1) for child in node.contents if isinstance(child, Tag))
    return False


def _main_part(soup: BeautifulSoup) -> Tag:
    """The page's main content: <main>, role=main or <article>; else the body without
    its navigation, footer and asides."""
    from bs4 import Tag

    for found in (soup.find("main"), soup.find(role="main"), soup.find("article")):
        if isinstance(found, Tag):
            return found
    body = soup.body if soup.body is not None else soup
    for tag in body(BOILERPLATE_TAGS):
        tag.decompose()
    return body
