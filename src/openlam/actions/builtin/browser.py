"""browser: a real Chromium, driven by Playwright — open pages, click, fill and submit
forms, read text, take screenshots into the workspace.

Each run gets its own browser: a Chromium process with a fresh temporary profile
(cookies, storage and cache belong to that run alone), started on the run's first
browser action and closed by the runtime at the run's end (:func:`close_run`,
:func:`close_all`). Browser actions of one run are serialised: they share one page.

Configuration (``openlam.toml``)::

    [browser]
    executable_path = "/usr/bin/chromium"   # or $OPENLAM_BROWSER_EXECUTABLE
    headless = true
    timeout = 10             # seconds to wait for an element
    navigation_timeout = 30  # seconds to wait for a page to load
    args = []                # extra Chromium switches

Debian's Chromium is used rather than Playwright's downloaded builds
(``apt-get install chromium``; ``scripts/install-system-deps.sh`` does it).

Every request the browser makes — page loads, each redirect hop, images, scripts,
XHR, WebSockets — goes through a local proxy (:mod:`openlam.actions.proxy`) that
applies the ``[network]`` address rules of openlam.toml and connects to the checked
address itself: a page cannot make the browser reach loopback, the local network or
the cloud metadata address unless the user allowed it. A refused page load fails the
action with the reason; a refused sub-request (an image, a script) is left out of the
page.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import PositiveFloat, StrictBool
from typing_extensions import TypedDict

from openlam.actions import effects
from openlam.actions.network import NetworkRules
from openlam.actions.plugin_config import PluginConfig, settings_of
from openlam.actions.proxy import PROXY_HEADER, GuardProxy
from openlam.actions.spec import ActionContext, Risk, action
from openlam.actions.workspace import file_sha256, relative, resolve, write_file
from openlam.errors import ActionError

if TYPE_CHECKING:
    from playwright.async_api import BrowserContext, Locator, Page, Playwright, Request, Response

log = logging.getLogger(__name__)

DEFAULT_EXECUTABLE = "/usr/bin/chromium"
EXECUTABLE_ENV = "OPENLAM_BROWSER_EXECUTABLE"
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    # WebRTC's UDP does not go through the proxy: keep it from reaching other addresses
    "--force-webrtc-ip-handling-policy=disable_non_proxied_udp",
)
ALLOWED_SCHEMES = ("http", "https")
MAX_TEXT_CHARS = 50_000
SCREENSHOT_TYPES = {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".webp": "webp"}
SUBMITTERS = "button[type=submit], input[type=submit], input[type=image], button:not([type])"


# ----------------------------------------------------------------------- results


class Opened(TypedDict):
    url: str
    title: str
    status: int | None


class PageState(TypedDict):
    url: str
    title: str


class Submitted(PageState):
    status: int | None


class Filled(TypedDict):
    selector: str
    chars: int


class PageText(TypedDict):
    url: str
    title: str
    text: str
    matches: int
    truncated: bool


class Screenshot(TypedDict):
    path: str
    bytes: int
    sha256: str


# ----------------------------------------------------------------- configuration


class BrowserSection(PluginConfig):
    """The ``[browser]`` table of openlam.toml."""

    section: ClassVar[str] = "browser"
    hint: ClassVar[str] = "timeouts are seconds, args a list of Chromium switches"

    executable_path: str = ""  # default: $OPENLAM_BROWSER_EXECUTABLE, else DEFAULT_EXECUTABLE
    headless: StrictBool = True
    timeout: PositiveFloat = 10.0
    navigation_timeout: PositiveFloat = 30.0
    args: list[str] = []


CONFIG = BrowserSection


@dataclass(frozen=True)
class BrowserConfig:
    """How one run's browser starts: ``[browser]``, the environment and the address rules."""

    executable_path: str = DEFAULT_EXECUTABLE
    headless: bool = True
    timeout: float = 10.0
    navigation_timeout: float = 30.0
    args: tuple[str, ...] = ()
    network: NetworkRules = field(default_factory=NetworkRules)

    @classmethod
    def from_settings(cls, settings: Any) -> BrowserConfig:
        settings = settings_of(settings)
        section = BrowserSection.of(settings)
        exe = os.environ.get(EXECUTABLE_ENV) or section.executable_path or DEFAULT_EXECUTABLE
        return cls(
            executable_path=exe,
            headless=section.headless,
            timeout=section.timeout,
            navigation_timeout=section.navigation_timeout,
            args=tuple(section.args),
            network=NetworkRules.from_settings(settings),
        )

    def chromium_args(self) -> list[str]:
        return [*CHROMIUM_ARGS, *(["--headless"] if self.headless else []), *self.args]


# ------------------------------------------------------------- sessions per run


@dataclass
class _Seen:
    """A response (or failure) the page got during the current action."""

    method: str
    status: int | None
    url: str
    main_navigation: bool
    refused: bool


@dataclass
class _Session:
    run_id: str
    config: BrowserConfig
    playwright: Playwright
    context: BrowserContext
    page: Page
    profile_dir: str
    loop: asyncio.AbstractEventLoop
    proxy: GuardProxy
    refusals: list[str]
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    seen: list[_Seen] = field(default_factory=list)

    def start_action(self) -> None:
        self.seen.clear()
        self.refusals.clear()

    def refused_load(self) -> str | None:
        """Why the proxy refused a page load of the current action, if it did."""
        from urllib.parse import urlsplit

        page = next((s for s in self.seen if s.refused and s.main_navigation), None)
        if page is None:
            return None
        host = urlsplit(page.url).hostname or ""
        # Chromium's own background requests may be refused meanwhile: name the page's
        mine = [r for r in self.refusals if host and host in r]
        return (mine or self.refusals or ["the address was refused"])[-1]

    def submission(self) -> _Seen | None:
        """The answer to a form submission: the first page load or the first request that
        is not a GET (a script's POST) after it."""
        return next((s for s in self.seen if s.main_navigation or s.method != "GET"), None)

    def current_page(self) -> Page:
        if self.page.is_closed():
            open_pages = [p for p in self.context.pages if not p.is_closed()]
            if open_pages:
                self.page = open_pages[-1]
        return self.page

    async def close(self) -> None:
        try:
            await self.context.close()
        except Exception as exc:  # already gone (crashed or killed): nothing to close
            log.debug("closing the browser of run %s: %s", self.run_id, exc)
        try:
            await self.playwright.stop()
        except Exception as exc:
            log.debug("stopping Playwright of run %s: %s", self.run_id, exc)
        await self.proxy.close()
        shutil.rmtree(self.profile_dir, ignore_errors=True)


_sessions: dict[str, _Session] = {}
_starting: dict[str, asyncio.Task[_Session]] = {}


def open_runs() -> list[str]:
    """Ids of the runs that have a browser open in this process."""
    return sorted(_sessions)


async def close_run(run_id: str) -> None:
    """Close the browser of one run (no-op if it has none). The runtime calls this when
    a run ends, whatever its outcome."""
    starting = _starting.pop(run_id, None)
    if starting is not None:
        with contextlib.suppress(Exception):
            session = await starting
            _sessions.setdefault(run_id, session)
    session = _sessions.pop(run_id, None)
    if session is not None:
        await _close_session(session)


async def close_all() -> None:
    """Close every browser this process opened (at shutdown)."""
    for run_id in list(_starting) + list(_sessions):
        await close_run(run_id)


async def _close_session(session: _Session) -> None:
    loop = asyncio.get_running_loop()
    if session.loop is loop:
        await session.close()
    elif session.loop.is_running():
        future = asyncio.run_coroutine_threadsafe(session.close(), session.loop)
        await asyncio.wrap_future(future)
    else:  # its event loop is gone, and with it Playwright's pipes to the browser
        shutil.rmtree(session.profile_dir, ignore_errors=True)


async def _session(ctx: ActionContext) -> _Session:
    loop = asyncio.get_running_loop()
    session = _sessions.get(ctx.run_id)
    if session is not None and (
        session.loop is not loop or (not session.context.pages and session.page.is_closed())
    ):
        # Playwright objects belong to the event loop that made them; a run resumed on
        # another loop (or whose browser died) starts a fresh browser.
        _sessions.pop(ctx.run_id, None)
        await _close_session(session)
        session = None
    if session is not None:
        return session
    task = _starting.get(ctx.run_id)
    if task is None or task.get_loop() is not loop:
        task = loop.create_task(_launch(ctx.run_id, BrowserConfig.from_settings(ctx)))
        _starting[ctx.run_id] = task
    try:
        session = await asyncio.shield(task)
    finally:
        if task.done() and _starting.get(ctx.run_id) is task:
            del _starting[ctx.run_id]
    _sessions[ctx.run_id] = session
    return session


async def _launch(run_id: str, config: BrowserConfig) -> _Session:
    exe = Path(config.executable_path)
    if not exe.is_file() or not os.access(exe, os.X_OK):
        raise ActionError(
            f"Chromium is not installed at {exe}: install it with `apt-get install chromium` "
            "(scripts/install-system-deps.sh does it), or set [browser] executable_path in "
            f"openlam.toml (or ${EXECUTABLE_ENV}) to a Chromium or Chrome binary"
        )
    from playwright.async_api import async_playwright

    profile_dir = tempfile.mkdtemp(prefix=f"openlam-browser-{_safe(run_id)}-")
    refusals: list[str] = []
    proxy = await GuardProxy(config.network, on_refused=refusals.append).start()
    playwright = await async_playwright().start()
    try:
        # "<-loopback>" sends loopback through the proxy too (Chromium bypasses it by default)
        context = await playwright.chromium.launch_persistent_context(
            profile_dir,
            executable_path=str(exe),
            headless=config.headless,
            args=config.chromium_args(),
            accept_downloads=False,
            proxy={"server": proxy.url, "bypass": "<-loopback>"},
            timeout=config.navigation_timeout * 1000,
        )
    except Exception as exc:
        await playwright.stop()
        await proxy.close()
        shutil.rmtree(profile_dir, ignore_errors=True)
        raise ActionError(f"cannot start Chromium ({exe}): {_first_line(exc)}") from None
    context.set_default_timeout(config.timeout * 1000)
    context.set_default_navigation_timeout(config.navigation_timeout * 1000)
    page = context.pages[0] if context.pages else await context.new_page()
    session = _Session(
        run_id=run_id,
        config=config,
        playwright=playwright,
        context=context,
        page=page,
        profile_dir=profile_dir,
        loop=asyncio.get_running_loop(),
        proxy=proxy,
        refusals=refusals,
    )

    def follow(new_page: Page) -> None:  # a link or script opened a tab: it becomes current
        session.page = new_page

    def answered(response: Response) -> None:
        session.seen.append(
            _Seen(
                response.request.method,
                response.status,
                response.url,
                _main_navigation(response.request),
                response.headers.get(PROXY_HEADER.lower()) == "refused",
            )
        )

    def failed(request: Request) -> None:
        main = _main_navigation(request)
        refused = main and "ERR_TUNNEL_CONNECTION_FAILED" in (request.failure or "")
        session.seen.append(_Seen(request.method, None, request.url, main, refused))

    context.on("page", follow)
    context.on("response", answered)
    context.on("requestfailed", failed)
    return session


def _main_navigation(request: Request) -> bool:
    """Whether ``request`` loads a page's main frame (not an image, a frame or XHR)."""
    try:
        return request.is_navigation_request() and request.frame.parent_frame is None
    except Exception:  # a service worker's request has no frame
        return False


@contextlib.asynccontextmanager
async def _page(ctx: ActionContext) -> AsyncIterator[tuple[_Session, Page]]:
    """The run's current page, held exclusively, with Playwright's errors translated."""
    from playwright.async_api import Error as PlaywrightError
    from playwright.async_api import TimeoutError as PlaywrightTimeout

    session = await _session(ctx)
    async with session.lock:
        page = session.current_page()
        session.start_action()
        try:
            yield session, page
        except PlaywrightTimeout as exc:
            raise ActionError(f"timed out on {page.url}: {_first_line(exc)}") from None
        except PlaywrightError as exc:
            message = _first_line(exc)
            if "has been closed" in message or "crashed" in message.lower():
                _sessions.pop(ctx.run_id, None)
                await _close_session(session)
                raise ActionError(f"the browser closed: {message}", transient=True) from None
            _raise_if_refused(session)
            transient = "net::ERR_" in message
            raise ActionError(message, transient=transient) from None
        _raise_if_refused(session)


def _raise_if_refused(session: _Session) -> None:
    reason = session.refused_load()
    if reason is not None:
        raise ActionError(f"the browser was not let load the page: {reason}")


def _first_line(exc: BaseException) -> str:
    """Playwright's messages carry a long call log; the first lines say what failed."""
    text = str(exc).split("Call log:")[0].strip()
    return " ".join(line.strip() for line in text.splitlines() if line.strip()) or repr(exc)


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in text)[:40]


def _ms(seconds: float | None, default: float) -> float:
    return (default if seconds is None else seconds) * 1000


async def _state(page: Page) -> PageState:
    return {"url": page.url, "title": await page.title()}


async def _wait_settled(page: Page, session: _Session) -> None:
    """After a click or submit: wait for a page the action started to finish loading."""
    await page.wait_for_load_state("load", timeout=session.config.navigation_timeout * 1000)


async def _one(page: Page, selector: str, timeout_ms: float) -> Locator:
    """The single element ``selector`` names, once it is attached."""
    from playwright.async_api import TimeoutError as PlaywrightTimeout

    locator = page.locator(selector)
    try:
        await locator.wait_for(state="attached", timeout=timeout_ms)
    except PlaywrightTimeout:
        raise ActionError(
            f"no element matches {selector!r} on {page.url} (waited {timeout_ms / 1000:g}s)"
        ) from None
    return locator


# ----------------------------------------------------------------------- actions


@action("browser.open", risk=Risk.read, idempotent=True, egress=True)
async def open_page(ctx: ActionContext, url: str) -> Opened:
    """Open a web page (http or https) in the run's browser and wait for it to load.

    Args:
        url: The http:// or https:// address.
    """
    scheme = urlsplit(url).scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        raise ActionError(
            f"browser.open refuses {url!r}: only http and https pages are "
            "opened (no file://, data: or browser-internal URLs)"
        )
    async with _page(ctx) as (session, page):
        response = await page.goto(url, wait_until="load")
        _raise_if_refused(session)
        if response is not None and response.headers.get(PROXY_HEADER.lower()):
            raise ActionError(await response.text(), transient=True)  # e.g. nothing listens
        status = response.status if response is not None else None
        if status is not None and status >= 400:
            raise ActionError(f"{url} answered HTTP {status}", transient=status >= 500)
        return {"url": page.url, "title": await page.title(), "status": status}


@action(
    "browser.click", risk=Risk.external, egress=True, find_effect=effects.recorded("browser.click")
)
async def click(ctx: ActionContext, selector: str, timeout: float | None = None) -> PageState:
    """Click the element a selector names, and wait for any page it opens to load.

    Args:
        selector: A Playwright selector naming one element, e.g. ``text=Sign in`` or
            ``button#save``.
        timeout: Seconds to wait for the element (default from [browser] timeout).
    """

    async def deliver() -> PageState:
        async with _page(ctx) as (session, page):
            ms = _ms(timeout, session.config.timeout)
            locator = await _one(page, selector, ms)
            await locator.click(timeout=ms)
            page = session.current_page()
            await _wait_settled(page, session)
            return await _state(page)

    return await effects.once(ctx, "browser.click", deliver)


@action("browser.fill", risk=Risk.write, idempotent=True)
async def fill(
    ctx: ActionContext,
    selector: str,
    value: str | None = None,
    secret: str | None = None,
    timeout: float | None = None,
) -> Filled:
    """Type a value into a form field (replacing what it holds). Give either ``value``, or
    ``secret``: the name of a stored secret whose value is typed without ever appearing
    in the plan or the result.

    Args:
        selector: A Playwright selector naming one input, textarea or editable element.
        value: The text to type.
        secret: Name of a secret (environment or `openlam secrets`) to type instead.
        timeout: Seconds to wait for the element (default from [browser] timeout).
    """
    if (value is None) == (secret is None):
        raise ActionError("browser.fill needs exactly one of value or secret")
    if secret is not None:
        value = ctx.secret(secret)
        if value is None:
            raise ActionError(
                f"no secret {secret!r}: set it with `openlam secrets set {secret}` "
                "or in the environment"
            )
    text = value or ""
    async with _page(ctx) as (session, page):
        ms = _ms(timeout, session.config.timeout)
        locator = await _one(page, selector, ms)
        await locator.fill(text, timeout=ms)
        return {"selector": selector, "chars": len(text)}


def _verify_submitted(args: dict[str, Any], output: Any, ctx: ActionContext) -> str | None:
    status = output.get("status")
    if status is None:
        return (
            "no answer to the submission was seen (the page sent nothing, or handled it "
            "without loading a page or sending a request)"
        )
    if status >= 400:
        return f"the site answered the submission with HTTP {status}"
    return None


@action(
    "browser.submit",
    risk=Risk.external,
    egress=True,
    verify=_verify_submitted,
    find_effect=effects.recorded("browser.submit"),
)
async def submit(
    ctx: ActionContext, selector: str = "form", timeout: float | None = None
) -> Submitted:
    """Submit a form — named by ``selector``, or the form around the element it names —
    by clicking its submit button (or submitting it directly if it has none), and wait
    for the resulting page to load. ``status`` is the HTTP status the site answered the
    submission with (None if nothing was sent).

    Args:
        selector: The form, or any element inside it (default: the page's only form).
        timeout: Seconds to wait for the element (default from [browser] timeout).
    """
    return await effects.once(ctx, "browser.submit", lambda: _submit(ctx, selector, timeout))


async def _submit(ctx: ActionContext, selector: str, timeout: float | None) -> Submitted:
    from playwright.async_api import TimeoutError as PlaywrightTimeout

    async with _page(ctx) as (session, page):
        ms = _ms(timeout, session.config.timeout)
        target = await _one(page, selector, ms)
        is_form = await target.evaluate("e => e.tagName === 'FORM'")
        form = target if is_form else target.locator("xpath=ancestor::form")
        if not is_form and await form.count() == 0:
            raise ActionError(f"{selector!r} is neither a form nor inside one on {page.url}")
        submitter = form.locator(SUBMITTERS).first
        if await submitter.count():
            await submitter.click(timeout=ms)
        else:
            try:  # a form with no button: submit it as pressing Enter would
                async with page.expect_navigation(timeout=ms):
                    await form.evaluate("f => f.requestSubmit()")
            except PlaywrightTimeout:
                pass  # the page handled the submission itself, without navigating
        page = session.current_page()
        await _wait_settled(page, session)
        if session.submission() is None:  # a script may still be sending it
            with contextlib.suppress(PlaywrightTimeout):
                await page.wait_for_load_state("networkidle", timeout=ms)
        answer = session.submission()
        return {**await _state(page), "status": answer.status if answer else None}


@action("browser.text", risk=Risk.read, idempotent=True)
async def read_text(
    ctx: ActionContext,
    selector: str | None = None,
    max_chars: int = MAX_TEXT_CHARS,
    timeout: float | None = None,
) -> PageText:
    """Read the visible text of the page, or of every element a selector names.

    Args:
        selector: A Playwright selector; omit it for the whole page.
        max_chars: Return at most this many characters (``truncated`` says if cut).
        timeout: Seconds to wait for a matching element (default from [browser] timeout).
    """
    async with _page(ctx) as (session, page):
        if selector is None:
            parts = [await page.locator("body").inner_text()]
        else:
            locator = page.locator(selector)
            await _any(page, locator, selector, _ms(timeout, session.config.timeout))
            parts = await locator.all_inner_texts()
        joined = "\n".join(parts)
        return {
            "url": page.url,
            "title": await page.title(),
            "text": joined[:max_chars],
            "matches": len(parts),
            "truncated": len(joined) > max_chars,
        }


async def _any(page: Page, locator: Locator, selector: str, timeout_ms: float) -> None:
    """Wait until at least one element matches (several are fine for reading)."""
    from playwright.async_api import TimeoutError as PlaywrightTimeout

    try:
        await locator.first.wait_for(state="attached", timeout=timeout_ms)
    except PlaywrightTimeout:
        raise ActionError(
            f"no element matches {selector!r} on {page.url} (waited {timeout_ms / 1000:g}s)"
        ) from None


def _verify_screenshot(args: dict[str, Any], output: Any, ctx: ActionContext) -> str | None:
    target = resolve(ctx, output.get("path") or args["path"], for_write=False)
    if not target.is_file():
        return f"{args['path']} does not exist after the screenshot"
    same = file_sha256(target) == output.get("sha256")
    return None if same else f"{args['path']} changed after writing"


@action("browser.screenshot", risk=Risk.write, idempotent=True, verify=_verify_screenshot)
async def screenshot(
    ctx: ActionContext, path: str, full_page: bool = True, selector: str | None = None
) -> Screenshot:
    """Save a screenshot of the page (or of one element) into the workspace.

    Args:
        path: File path relative to the workspace, ending in .png, .jpg or .webp.
        full_page: Capture the whole scrollable page, not only the viewport.
        selector: Capture only the element this selector names.
    """
    target = resolve(ctx, path, for_write=True)
    kind: Literal["png", "jpeg", "webp"] | None = SCREENSHOT_TYPES.get(  # type: ignore[assignment]
        target.suffix.lower()
    )
    if kind is None:
        raise ActionError(f"{path!r}: a screenshot path must end in {', '.join(SCREENSHOT_TYPES)}")
    async with _page(ctx) as (session, page):
        if selector is None:
            data = await page.screenshot(full_page=full_page, type=kind)
        else:
            locator = await _one(page, selector, session.config.timeout * 1000)
            data = await locator.screenshot(type=kind)
    size, digest = write_file(target, [data])
    return {"path": relative(ctx, target), "bytes": size, "sha256": digest}
