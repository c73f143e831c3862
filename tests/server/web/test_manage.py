"""The dashboard's forms for sources, schedules and webhook triggers, on the real app:
admin only (as the API), CSRF-protected, the refusals shown inline in the form (422,
the values kept), and what they add listed on the page and through the API."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from openlam.config import load_settings
from openlam.server.app import create_app
from tests.server.test_resources_api import SPEC
from tests.server.web.test_pages import PASSWORD, log_in

HTMX = {"HX-Request": "true"}


@pytest.fixture
def client(workspace: Path) -> Iterator[TestClient]:
    (workspace / "openlam.toml").write_text('[openlam]\nmodel = "offline"\n')
    app = create_app(settings=load_settings(workspace))
    for name, role in (("olga", "operator"), ("ada", "admin")):
        app.state.credentials.add_user(name, role, PASSWORD)
    with TestClient(app) as c:
        yield c


def inline_error(html: str, form_id: str) -> str:
    """The error shown inside the form of section ``form_id``."""
    section = html.split(f'id="{form_id}"', 1)[1].split("</section>", 1)[0]
    found = re.search(r'<p class="flash error" role="alert">(.*?)</p>', section, re.S)
    assert found, section
    return found.group(1)


def test_only_an_admin_sees_and_may_use_the_forms(client: TestClient) -> None:
    csrf = log_in(client, "olga")
    actions = client.get("/actions")
    assert actions.status_code == 200 and 'id="add-mcp"' not in actions.text
    page = client.get("/schedules")
    assert page.status_code == 200 and "<h1>Schedules and triggers" in page.text
    assert 'id="add-schedule"' not in page.text and "needs the admin role" in page.text
    for path, data in (
        ("/schedules", {"when": "every day", "goal": "x"}),
        ("/triggers", {"name": "t", "goal": "x"}),
        ("/sources/openapi", {"name": "t", "spec": "x.json"}),
        ("/sources/mcp", {"name": "t", "command": "true"}),
        ("/sources/t/remove", {}),
        ("/schedules/t/remove", {}),
        ("/triggers/t/remove", {}),
    ):
        refused = client.post(path, data={**data, "csrf_token": csrf})
        assert refused.status_code == 403 and "needs the admin role" in refused.text, path
    client.post("/logout", data={"csrf_token": csrf})
    csrf = log_in(client, "ada")
    assert 'id="add-schedule"' in client.get("/schedules").text
    assert 'id="add-mcp"' in client.get("/actions").text
    forged = client.post("/schedules", data={"when": "every day", "goal": "x"})
    assert forged.status_code == 403 and "CSRF" in forged.text  # no token: refused


def test_schedules_are_added_listed_refused_inline_and_removed(client: TestClient) -> None:
    csrf = log_in(client, "ada")
    bad = client.post(
        "/schedules",
        data={"when": "now and then", "goal": "write 'tick' to tick.md", "csrf_token": csrf},
        headers=HTMX,
    )
    assert bad.status_code == 422
    assert "cannot read the schedule" in inline_error(bad.text, "add-schedule")
    assert "write &#39;tick&#39; to tick.md</textarea>" in bad.text  # the goal kept
    assert "Traceback" not in bad.text
    nobody = client.post(
        "/schedules",
        data={"when": "every day", "goal": "x", "agent": "nobody_here", "csrf_token": csrf},
    )
    assert nobody.status_code == 422 and inline_error(nobody.text, "add-schedule")
    added = client.post(
        "/schedules",
        data={
            "when": "every weekday at 9:00",
            "goal": "write 'tick' to tick.md",
            "name": "ticker",
            "csrf_token": csrf,
        },
        headers=HTMX,
    )
    assert added.status_code == 200, added.text
    assert "Schedule ticker added: cron 0 0 9 * * 1-5" in added.text
    assert 'data-schedule="ticker"' in added.text
    listed = client.get("/api/v1/schedules").json()["schedules"]
    assert [s["name"] for s in listed] == ["ticker"]
    again = client.post(
        "/schedules",
        data={"when": "every day", "goal": "x", "name": "ticker", "csrf_token": csrf},
    )
    assert again.status_code == 422 and "already a schedule named ticker" in again.text
    gone = client.post("/schedules/ticker/remove", data={"csrf_token": csrf}, headers=HTMX)
    assert gone.status_code == 200 and "Schedule ticker removed." in gone.text
    assert 'data-schedule="ticker"' not in gone.text
    twice = client.post("/schedules/ticker/remove", data={"csrf_token": csrf})
    assert twice.status_code == 422 and "no schedule named ticker" in twice.text


def test_a_webhook_trigger_is_added_with_its_secret_shown_once_and_removed(
    client: TestClient,
) -> None:
    csrf = log_in(client, "ada")
    bad = client.post(
        "/triggers", data={"name": "New Lead!", "goal": "qualify it", "csrf_token": csrf}
    )
    assert bad.status_code == 422
    assert "is not allowed" in inline_error(bad.text, "add-trigger")
    added = client.post(
        "/triggers", data={"name": "new-lead", "goal": "qualify it", "csrf_token": csrf}
    )
    assert added.status_code == 200 and "Webhook trigger new-lead added." in added.text
    secret = re.search(r'id="secret".*?<pre class="args">([^<]+)</pre>', added.text, re.S)
    assert secret and len(secret.group(1).strip()) >= 24
    page = client.get("/schedules").text
    assert 'data-trigger="new-lead"' in page and secret.group(1).strip() not in page
    fired = client.post(
        "/hooks/new-lead",
        content=json.dumps({"name": "Bea"}),
        headers={"X-OpenLAM-Token": secret.group(1).strip()},
    )
    assert fired.status_code == 202, fired.text  # the secret shown is the one that works
    gone = client.post("/triggers/new-lead/remove", data={"csrf_token": csrf})
    assert gone.status_code == 200 and 'data-trigger="new-lead"' not in gone.text


def test_sources_are_added_refused_inline_and_removed(client: TestClient, workspace: Path) -> None:
    (workspace / "specs").mkdir()
    (workspace / "specs" / "tickets.json").write_text(json.dumps(SPEC))
    csrf = log_in(client, "ada")
    missing = client.post(
        "/sources/openapi",
        data={"name": "tickets", "spec": "specs/nope.json", "csrf_token": csrf},
        headers=HTMX,
    )
    assert missing.status_code == 422 and "Traceback" not in missing.text
    assert inline_error(missing.text, "add-openapi")
    assert 'value="specs/nope.json"' in missing.text  # kept for correcting
    added = client.post(
        "/sources/openapi",
        data={"name": "tickets", "spec": "specs/tickets.json", "csrf_token": csrf},
        headers=HTMX,
    )
    assert added.status_code == 200, added.text
    assert "OpenAPI service tickets added with 2 operation(s)." in added.text
    assert 'data-source="tickets"' in added.text and "tickets.open_ticket" in added.text
    neither = client.post("/sources/mcp", data={"name": "time", "csrf_token": csrf})
    assert neither.status_code == 422
    assert "give either a command" in inline_error(neither.text, "add-mcp")
    clash = client.post(
        "/sources/mcp", data={"name": "tickets", "command": "true", "csrf_token": csrf}
    )
    assert clash.status_code == 422 and "already the name of" in clash.text
    server = Path(sys.executable).parent / "mcp-server-time"
    mcp = client.post(
        "/sources/mcp",
        data={
            "name": "time",
            "command": f"{server} --local-timezone UTC",
            "connect": "1",
            "csrf_token": csrf,
        },
    )
    assert mcp.status_code == 200, mcp.text
    assert "MCP server time added with 2 tool(s)." in mcp.text
    assert 'data-source="time"' in mcp.text and "time.get_current_time" in mcp.text
    sources = client.get("/api/v1/sources").json()["sources"]
    assert {s["name"]: s["kind"] for s in sources} == {"tickets": "openapi", "time": "mcp"}
    gone = client.post("/sources/tickets/remove", data={"csrf_token": csrf}, headers=HTMX)
    assert gone.status_code == 200 and "Source tickets removed." in gone.text
    assert 'data-source="tickets"' not in gone.text and "tickets.open_ticket" not in gone.text
    twice = client.post("/sources/tickets/remove", data={"csrf_token": csrf})
    assert twice.status_code == 422 and "Traceback" not in twice.text


def test_a_fired_schedule_shows_when_it_last_fired() -> None:
    from openlam.server.web.render import render

    html = render(
        "schedules.html",
        root="",
        me=None,
        nav="schedules",
        csrf="",
        can_manage=False,
        form={},
        schedules=[
            {
                "name": "ticker",
                "when": "every minute",
                "cron": "0 * * * * *",
                "goal": "tick",
                "last_fired_at": "2026-12-05T09:00:00+00:00",  # as DBOS keeps it
            }
        ],
        triggers=[],
    )
    assert "2026-12-05 09:00:00" in html
