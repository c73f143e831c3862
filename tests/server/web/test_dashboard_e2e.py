"""The dashboard end to end, in a real browser (Debian's Chromium driven by Playwright)
against a real ``openlam serve`` (uvicorn, its own queue worker, the offline planner):
log in, start a goal, watch its steps appear live, approve the waiting step from the
inbox, see the run complete without reloading, download its deliverable.

With ``OPENLAM_SCREENSHOTS=DIR`` it also saves a screenshot of every page (laptop and
phone width) into DIR — how docs/img/ is made:
``OPENLAM_SCREENSHOTS=docs/img python -m pytest tests/server/web/test_dashboard_e2e.py``.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import allow_policy

CHROMIUM = "/usr/bin/chromium"
PASSWORD = "correct horse battery"
GOAL = "write 'Quarterly numbers: all green' to report.md"
POLICY = (
    "rules:\n  - {id: ask-before-writing, action: files.write, "
    "decision: require_approval, reason: 'a person checks files before they are written'}\n"
)
LAPTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}

pytestmark = [
    pytest.mark.timeout(240),
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(),
        reason="Debian's chromium is not installed (scripts/install-system-deps.sh)",
    ),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def openlam(workspace: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "openlam", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "OPENLAM_WORKSPACE": str(workspace)},
    )
    assert done.returncode == 0, done.stderr
    return done


@pytest.fixture
def server(workspace: Path, tmp_path: Path) -> Iterator[str]:
    """``openlam serve`` on a free port, with an approver user and a policy that asks a
    person before any file is written."""
    allow_policy(workspace, POLICY)
    if os.environ.get("OPENLAM_SCREENSHOTS"):
        asyncio.run(_runs_that_find_gaps(workspace))
    openlam(
        workspace,
        "users",
        "add",
        "alice",
        "--role",
        "approver",
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    port = free_port()
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "openlam", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env={**os.environ, "OPENLAM_WORKSPACE": str(workspace), "OPENLAM_MODEL": "offline"},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                if httpx.get(f"{url}/api/v1/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()


async def _runs_that_find_gaps(workspace: Path) -> None:
    """Earlier runs whose plans asked for capabilities the workforce lacks (so the gaps
    page of the screenshots has something to rank)."""
    from openlam.testing import run_goal

    for goal, capability, reason in (
        (
            "book me a flight to Lisbon on Friday",
            "book flights",
            "no action searches or books flights",
        ),
        ("book a train to Porto", "book flights", "no travel booking action is installed"),
        (
            "have the NDA signed by Acme",
            "collect e-signatures",
            "no e-signature service is connected",
        ),
    ):
        plan = {
            "steps": [
                {
                    "id": "g",
                    "action": "request_capability",
                    "args": {"capability": capability, "reason": reason},
                }
            ]
        }
        await run_goal(goal, [plan], workspace)


def fits_the_screen(page) -> bool:
    """No sideways scrolling of the page itself (wide tables scroll in their own box)."""
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


class Shots:
    """Screenshots into $OPENLAM_SCREENSHOTS, if set."""

    def __init__(self) -> None:
        where = os.environ.get("OPENLAM_SCREENSHOTS")
        self.dir = Path(where) if where else None
        if self.dir:
            self.dir.mkdir(parents=True, exist_ok=True)

    def take(self, page, name: str, *, full: bool = False) -> None:
        if self.dir is not None:
            page.screenshot(path=str(self.dir / f"dashboard-{name}.png"), full_page=full)


def test_log_in_start_a_goal_watch_it_approve_it_and_download_its_deliverable(
    server: str, workspace: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    shots = Shots()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        context = browser.new_context(viewport=LAPTOP, accept_downloads=True)
        page = context.new_page()

        page.goto(f"{server}/")  # not logged in: the login page
        expect(page).to_have_url(re.compile(r"/login\?next="))
        shots.take(page, "login")
        page.fill("input[name=user]", "alice")
        page.fill("input[name=password]", "not the password")
        page.click("main button[type=submit]")
        expect(page.locator(".flash.error")).to_contain_text("Wrong user or password")
        page.fill("input[name=user]", "alice")
        page.fill("input[name=password]", PASSWORD)
        page.click("main button[type=submit]")
        expect(page.locator("h1")).to_have_text("Overview")
        expect(page.locator("header .who")).to_contain_text("alice · approver")

        page.click("nav >> text=Start a goal")
        shots.take(page, "goal")
        page.fill("textarea[name=goal]", GOAL)
        page.click("main button[type=submit]")
        expect(page).to_have_url(re.compile(r"/runs/run-[0-9a-f]+$"))
        run_id = page.url.rsplit("/", 1)[1]
        page.evaluate("window.stillTheSamePage = true")  # gone if anything reloads it

        expect(page.locator("#cancel")).to_be_visible()
        events = page.locator("#events")  # empty in the HTML: filled by the SSE stream
        expect(events).to_contain_text("Plan v1", timeout=60_000)
        expect(events).to_contain_text("Waiting for approval", timeout=60_000)
        expect(events).to_contain_text("files.write")
        expect(page.locator("#plan")).to_contain_text("files.write")  # updated in place
        expect(page.locator("#run-status")).to_contain_text("running")
        expect(page.locator("#tree")).to_contain_text("running")
        shots.take(page, "run-live")

        expect(page.locator("#waiting")).to_have_text("1", timeout=15_000)  # the nav's badge
        if shots.dir is not None:  # the inbox at a laptop's width, for the docs
            laptop = context.new_page()
            laptop.goto(f"{server}/approvals")
            shots.take(laptop, "approvals")
            laptop.close()
        inbox = context.new_page()  # the approver's phone; the run page stays open
        inbox.set_viewport_size(PHONE)
        inbox.goto(f"{server}/approvals")
        card = inbox.locator("article.approval", has_text=run_id)
        expect(card).to_contain_text("report.md")
        expect(card).to_contain_text("a person checks files before they are written")
        assert not (workspace / "report.md").exists()
        assert fits_the_screen(inbox)
        shots.take(inbox, "phone-approvals")
        card.locator("textarea[name=comment]").fill("numbers checked")
        card.locator("button[value=approve]").click()
        expect(inbox.locator(".flash.notice")).to_contain_text("approved")

        report = page.locator("#report [data-status]")  # arrives live, no reload
        expect(report).to_have_attribute("data-status", "completed", timeout=60_000)
        expect(events).to_contain_text("approved by alice")
        expect(page.locator("#run-status")).to_contain_text("completed")
        expect(page.locator("#cancel")).to_have_count(0)  # nothing left to cancel
        assert page.evaluate("window.stillTheSamePage") is True
        shots.take(page, "run-done", full=True)
        with page.expect_download() as download:
            page.click("#report a[download]")
        saved = download.value.path()
        assert Path(saved).read_text() == "Quarterly numbers: all green"
        assert download.value.suggested_filename == "report.md"

        page.goto(f"{server}/audit")
        page.click("text=Verify the chain")
        expect(page.locator("#verdict")).to_contain_text("audit log intact")
        expect(page.locator("table.rows")).to_contain_text("approval.decided")
        shots.take(page, "audit")

        page.set_viewport_size(PHONE)  # every page fits a phone: tables scroll inside
        for path in (
            "/",
            f"/runs/{run_id}",
            "/runs",
            "/org",
            "/actions",
            "/audit",
            "/gaps",
            "/learning",
            "/goal",
        ):
            page.goto(server + path)
            assert fits_the_screen(page), path
        page.set_viewport_size(LAPTOP)
        if shots.dir is not None:
            _every_other_page(page, server, run_id, shots)
        browser.close()


def _every_other_page(page, server: str, run_id: str, shots: Shots) -> None:
    for path, name in (
        ("/", "overview"),
        ("/org", "org"),
        ("/actions", "actions"),
        ("/gaps", "gaps"),
        ("/runs", "runs"),
        ("/learning", "learning"),
    ):
        page.goto(server + path)
        shots.take(page, name)
    page.goto(f"{server}/org")
    page.locator("details.agent").first.locator("summary").click()
    shots.take(page, "org-agent")
    page.set_viewport_size(PHONE)
    for path, name in (("/", "phone-overview"), (f"/runs/{run_id}", "phone-run")):
        page.goto(server + path)
        shots.take(page, name, full=name == "phone-run")
