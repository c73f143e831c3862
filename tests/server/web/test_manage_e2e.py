"""The dashboard's forms for sources and schedules in a real browser (Debian's Chromium
driven by Playwright) against a real ``openlam serve``: an admin adds a schedule and an
OpenAPI source through the forms and sees them listed without a page reload (htmx), an
invalid schedule is refused inline with the form kept, and at a phone's width the page
still fits. (Removing, MCP servers, triggers and roles: test_manage.py.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.server.test_resources_api import SPEC
from tests.server.web.test_dashboard_e2e import (
    CHROMIUM,
    LAPTOP,
    PASSWORD,
    PHONE,
    Shots,
    fits_the_screen,
    free_port,
    openlam,
)

pytestmark = [
    pytest.mark.timeout(240),
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(),
        reason="Debian's chromium is not installed (scripts/install-system-deps.sh)",
    ),
]


@pytest.fixture
def server(workspace: Path, tmp_path: Path) -> Iterator[str]:
    """``openlam serve`` on a free port with an admin user and an OpenAPI document in
    the workspace."""
    (workspace / "specs").mkdir()
    (workspace / "specs" / "tickets.json").write_text(json.dumps(SPEC))
    openlam(workspace, "users", "add", "ada", "--role", "admin", "--password-stdin", stdin=PASSWORD)
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


def test_an_admin_adds_a_schedule_and_a_source_and_sees_them_listed(server: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    shots = Shots()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport=LAPTOP)
        page.goto(f"{server}/login")
        page.fill("input[name=user]", "ada")
        page.fill("input[name=password]", PASSWORD)
        page.click("main button[type=submit]")
        expect(page.locator("h1")).to_have_text("Overview")

        page.click("nav >> text=Schedules")
        expect(page.locator("h1")).to_have_text("Schedules and triggers")
        page.evaluate("window.stillTheSamePage = true")  # gone if a form reloads the page
        form = page.locator("#add-schedule form")
        form.locator("input[name=when]").fill("every weekday at 9:00")
        form.locator("textarea[name=goal]").fill("write the deals summary to deals.md")
        form.locator("input[name=name]").fill("deals")
        form.locator("button[type=submit]").click()
        expect(page.locator(".flash.notice")).to_contain_text("Schedule deals added")
        row = page.locator("#schedules tr[data-schedule=deals]")
        expect(row).to_contain_text("every weekday at 9:00")
        expect(row).to_contain_text("write the deals summary")
        assert page.evaluate("window.stillTheSamePage") is True  # htmx swapped it in
        shots.take(page, "schedules")

        page.click("nav >> text=Actions")
        expect(page.locator("h1")).to_have_text("Actions and sources")
        page.evaluate("window.stillTheSamePage = true")
        form = page.locator("#add-openapi form")
        form.locator("input[name=name]").fill("tickets")
        form.locator("input[name=spec]").fill("specs/tickets.json")
        form.locator("button[type=submit]").click()
        expect(page.locator(".flash.notice")).to_contain_text(
            "OpenAPI service tickets added with 2 operation(s)"
        )
        expect(page.locator("#sources tr[data-source=tickets]")).to_contain_text("openapi")
        expect(page.locator("#actions")).to_contain_text("tickets.open_ticket")
        assert page.evaluate("window.stillTheSamePage") is True
        shots.take(page, "actions-forms")

        page.set_viewport_size(PHONE)  # the forms fit a phone
        for path in ("/schedules", "/actions"):
            page.goto(server + path)
            assert fits_the_screen(page), path
        shots.take(page, "phone-actions")
        browser.close()


def test_an_invalid_schedule_is_refused_inline_with_the_form_kept(server: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    shots = Shots()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport=PHONE)
        page.goto(f"{server}/login?next=/schedules")
        page.fill("input[name=user]", "ada")
        page.fill("input[name=password]", PASSWORD)
        page.click("main button[type=submit]")
        expect(page.locator("h1")).to_have_text("Schedules and triggers")
        page.evaluate("window.stillTheSamePage = true")
        form = page.locator("#add-schedule form")
        form.locator("input[name=when]").fill("now and then")
        form.locator("textarea[name=goal]").fill("water the plants")
        form.locator("button[type=submit]").click()
        error = page.locator("#add-schedule .flash.error")
        expect(error).to_contain_text("cannot read the schedule 'now and then'")
        expect(error).to_contain_text("every weekday at 9:00")  # the fix, with examples
        form = page.locator("#add-schedule form")
        expect(form.locator("input[name=when]")).to_have_value("now and then")
        expect(form.locator("textarea[name=goal]")).to_have_value("water the plants")
        expect(page.locator("#schedules tbody")).to_contain_text("No schedules.")
        expect(page.locator("body")).not_to_contain_text("Traceback")
        assert page.evaluate("window.stillTheSamePage") is True  # htmx swapped the 422 in
        assert fits_the_screen(page)
        shots.take(page, "phone-schedule-error", full=True)
        browser.close()
