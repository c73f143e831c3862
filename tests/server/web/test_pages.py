"""The dashboard over HTTP, on the real app (``create_app``, its own queue worker, the
offline planner): login by password and by token, the login redirect, roles, CSRF,
queuing a goal, the live stream of a run, static files, deliverable downloads."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from openlam.config import load_settings
from openlam.server.app import create_app

PASSWORD = "a long enough password"


@pytest.fixture
def app(workspace: Path):
    (workspace / "openlam.toml").write_text('[openlam]\nmodel = "offline"\n')
    settings = load_settings(workspace).with_overrides(step_timeout=5.0)
    app = create_app(settings=settings)
    creds = app.state.credentials
    for name, role in (("vic", "viewer"), ("olga", "operator"), ("alice", "approver")):
        creds.add_user(name, role, PASSWORD)
    return app


@pytest.fixture
def client(app) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


def log_in(client: TestClient, user: str) -> str:
    """Log ``user`` in; returns the session's CSRF token (as the pages carry it)."""
    answer = client.post(
        "/login", data={"user": user, "password": PASSWORD, "next": "/"}, follow_redirects=False
    )
    assert answer.status_code == 303, answer.text
    page = client.get("/")
    assert page.status_code == 200
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


def wait_run(client: TestClient, run_id: str, timeout: float = 60) -> dict:
    app = client.app
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = app.state.workforce.store.get_run(run_id)
        if run and run["status"] not in ("queued", "running", "interrupted"):
            return run
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} did not finish")


def test_pages_need_a_login_and_the_login_page_says_what_went_wrong(client: TestClient) -> None:
    for path in ("/", "/runs", "/approvals", "/org", "/actions", "/audit", "/gaps", "/goal"):
        answer = client.get(path, follow_redirects=False)
        assert answer.status_code == 303 and answer.headers["location"].startswith("/login?next=")
    wrong = client.post("/login", data={"user": "alice", "password": "nope"})
    assert wrong.status_code == 401 and "Wrong user or password" in wrong.text
    assert "openlam_session" not in wrong.cookies
    empty = client.post("/login", data={})
    assert empty.status_code == 401 and "Give a token, or a user and password" in empty.text
    offsite = client.post(
        "/login",
        data={"user": "vic", "password": PASSWORD, "next": "//evil.example/"},
        follow_redirects=False,
    )
    assert offsite.headers["location"] == "/"  # never sent to another site
    forged = client.post(
        "/login",
        data={"user": "vic", "password": PASSWORD},
        headers={"Origin": "https://evil.example"},
        follow_redirects=False,
    )
    assert forged.status_code == 403 and "openlam_session" not in forged.cookies


def test_a_token_logs_in_and_logging_out_ends_the_session(app, client: TestClient) -> None:
    _info, token = app.state.credentials.create_token("ci-bot", "viewer")
    answer = client.post("/login", data={"token": token, "next": "/org"}, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/org"
    page = client.get("/org")
    assert page.status_code == 200 and "ci-bot · viewer" in page.text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    assert (
        client.post("/logout", data={"csrf_token": csrf}, follow_redirects=False).status_code == 303
    )
    assert client.get("/", follow_redirects=False).status_code == 303


def test_every_page_renders_for_a_viewer_who_cannot_start_or_decide(client: TestClient) -> None:
    csrf = log_in(client, "vic")
    for path, marker in (
        ("/", "Overview"),
        ("/runs", "Runs"),
        ("/approvals", "Approvals"),
        ("/org", "Org chart"),
        ("/actions", "Actions and sources"),
        ("/audit", "Audit log"),
        ("/gaps", "Capability gaps"),
        ("/learning", "Learning"),
    ):
        page = client.get(path)
        assert page.status_code == 200 and f"<h1>{marker}" in page.text, path
        assert "X-CSRF-Token" in page.text  # htmx requests carry the token too
    refused = client.get("/goal")
    assert refused.status_code == 403 and "needs the operator role" in refused.text
    posted = client.post("/goal", data={"goal": "write 'x' to x.md", "csrf_token": csrf})
    assert posted.status_code == 403
    decided = client.post("/approvals/whatever", data={"decision": "approve", "csrf_token": csrf})
    assert decided.status_code == 403


def test_a_form_without_the_csrf_token_is_refused(client: TestClient) -> None:
    log_in(client, "olga")
    answer = client.post("/goal", data={"goal": "write 'x' to x.md"})
    assert answer.status_code == 403 and "CSRF" in answer.text
    assert answer.headers["content-type"].startswith("text/html")  # a page, not JSON
    assert client.app.state.workforce.store.list_runs() == []


def test_a_goal_is_queued_run_streamed_live_and_its_deliverable_downloaded(
    client: TestClient,
) -> None:
    csrf = log_in(client, "olga")
    bad = client.post("/goal", data={"goal": "   ", "csrf_token": csrf})
    assert bad.status_code == 400 and "the goal is empty" in bad.text
    answer = client.post(
        "/goal",
        data={"goal": "write 'from the web' to web.md", "csrf_token": csrf},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    run_id = answer.headers["location"].rsplit("/", 1)[1]
    run = wait_run(client, run_id)
    assert run["status"] == "completed", run["summary"]

    with client.stream("GET", f"/runs/{run_id}/live") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        body = "".join(stream.iter_text())
    messages = [m for m in body.split("\n\n") if m.strip()]
    kinds = [re.search(r"^event: (\w+)", m, re.M).group(1) for m in messages]
    assert kinds[-1] == "finished" and kinds.count("finished") == 1
    assert "Plan v1" in body and "files.write" in body
    assert f"/runs/{run_id}/files/web.md" in messages[-1]
    ids = [int(i) for i in re.findall(r"^id: (\d+)$", body, re.M)]
    assert ids == list(range(1, len(ids) + 1))

    with client.stream(
        "GET", f"/runs/{run_id}/live", headers={"Last-Event-ID": str(ids[-2])}
    ) as stream:
        again = "".join(stream.iter_text())
    assert re.findall(r"^id: (\d+)$", again, re.M) == [str(ids[-1])]  # only what was missed
    for hostile in ("\u00b2", "9" * 5000, "-1", "1e3"):  # not a count: from the start
        with client.stream(
            "GET", f"/runs/{run_id}/live", headers={"Last-Event-ID": hostile.encode("latin-1")}
        ) as stream:
            assert stream.status_code == 200
            assert re.findall(r"^id: (\d+)$", "".join(stream.iter_text()), re.M)[0] == "1"

    listed = client.get("/runs?status=completed")
    assert run_id in listed.text and "older →" not in listed.text
    assert client.get("/runs?status=nope").status_code == 400
    page = client.get(f"/runs/{run_id}")
    assert "sse-connect" not in page.text and 'data-status="completed"' in page.text
    download = client.get(f"/runs/{run_id}/files/web.md")
    assert download.status_code == 200 and download.text == "from the web"
    assert "attachment" in download.headers["content-disposition"]
    assert client.get(f"/runs/{run_id}/files/openlam.toml").status_code == 404
    assert client.get("/runs/run-nope").status_code == 404
    assert client.get("/runs/run-nope/live").status_code == 404  # no endless retries


def test_static_files_ship_with_the_package(client: TestClient) -> None:
    htmx = client.get("/static/htmx.min.js")
    assert htmx.status_code == 200 and "htmx 2.0.11" in htmx.text[:200]
    assert htmx.headers["content-type"].startswith("text/javascript")
    assert "sse-connect" in client.get("/static/htmx-sse.min.js").text
    assert client.get("/static/dashboard.css").status_code == 200
    for bad in ("../app.py", ".hidden.js", "nope.js", "views.py"):
        assert client.get(f"/static/{bad}").status_code == 404


POLICY = "rules:\n  - {id: ask-before-writing, action: files.write, decision: require_approval}\n"


def pending(client: TestClient, n: int, timeout: float = 60) -> list:
    from openlam.governance.api import list_approvals

    settings = client.app.state.workforce.settings
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = list_approvals(settings, status="pending")
        if len(found) >= n:
            return sorted(found, key=lambda a: a.requested_at)
        time.sleep(0.1)
    raise AssertionError(f"fewer than {n} approvals waiting")


def submit(client: TestClient, csrf: str, goal: str) -> str:
    answer = client.post("/goal", data={"goal": goal, "csrf_token": csrf}, follow_redirects=False)
    assert answer.status_code == 303, answer.text
    return answer.headers["location"].rsplit("/", 1)[1]


def test_edit_and_approve_or_deny_from_the_inbox(workspace: Path) -> None:
    (workspace / "policies").mkdir()
    (workspace / "policies" / "org.yaml").write_text(POLICY, encoding="utf-8")
    (workspace / "openlam.toml").write_text('[openlam]\nmodel = "offline"\n')
    settings = load_settings(workspace).with_overrides(step_timeout=5.0)
    app = create_app(settings=settings)
    app.state.credentials.add_user("alice", "approver", PASSWORD)
    with TestClient(app) as client:
        csrf = log_in(client, "alice")
        edited_run = submit(client, csrf, "write 'draft' to memo.md")
        denied_run = submit(client, csrf, "write 'secret' to leak.md")
        first, second = pending(client, 2)
        assert {first.run_id, second.run_id} == {edited_run, denied_run}
        to_edit = first if first.run_id == edited_run else second
        to_deny = second if to_edit is first else first

        assert client.get("/approvals/waiting").text == '<span class="count">2</span>'
        inbox = client.get("/approvals")
        assert to_edit.id in inbox.text and "Edit the arguments" in inbox.text
        bad = client.post(
            f"/approvals/{to_edit.id}",
            data={"decision": "edit", "args": "{not json", "csrf_token": csrf},
        )
        assert bad.status_code == 400 and "not JSON" in bad.text
        unknown = client.post(
            f"/approvals/{to_edit.id}",
            data={
                "decision": "edit",
                "csrf_token": csrf,
                "args": '{"path": "memo.md", "content": "draft", "colour": "red"}',
            },
        )
        assert unknown.status_code == 400 and "colour" in unknown.text
        done = client.post(
            f"/approvals/{to_edit.id}",
            data={
                "decision": "edit",
                "comment": "final wording",
                "csrf_token": csrf,
                "args": '{"path": "memo.md", "content": "final"}',
            },
        )
        assert done.status_code == 200 and f"Approval {to_edit.id}" in done.text
        assert ": edited." in done.text
        refused = client.post(
            f"/approvals/{to_deny.id}",
            data={"decision": "deny", "comment": "not this file", "csrf_token": csrf},
        )
        assert refused.status_code == 200 and ": denied." in refused.text
        again = client.post(
            f"/approvals/{to_deny.id}", data={"decision": "approve", "csrf_token": csrf}
        )
        assert again.status_code == 400 and "already denied" in again.text

        assert client.get("/approvals/waiting").text == ""
        assert wait_run(client, edited_run)["status"] == "completed"
        assert wait_run(client, denied_run)["status"] != "completed"
    assert (workspace / "memo.md").read_text() == "final"
    assert not (workspace / "leak.md").exists()


def test_a_question_is_answered_and_a_run_cancelled_from_the_run_page(workspace: Path) -> None:
    from openlam.testing import scripted_model

    plan = {
        "steps": [
            {
                "id": "q",
                "action": "human.ask",
                "args": {"question": "Which city is the offsite in?"},
            },
            {
                "id": "w",
                "action": "files.write",
                "args": {"path": "offsite.md", "content": "Offsite city: ${q.output.answer}"},
            },
        ]
    }
    scripted_model("test:web-ask", [plan, plan])
    (workspace / "openlam.toml").write_text('[openlam]\nmodel = "test:web-ask"\n')
    settings = load_settings(workspace).with_overrides(step_timeout=5.0)
    app = create_app(settings=settings)
    app.state.credentials.add_user("olga", "operator", PASSWORD)
    app.state.credentials.add_user("vic", "viewer", PASSWORD)
    with TestClient(app) as client:
        csrf = log_in(client, "olga")
        asked = submit(client, csrf, "plan the offsite")
        deadline = time.monotonic() + 60
        while "The run asks you" not in (page := client.get(f"/runs/{asked}")).text:
            assert time.monotonic() < deadline, page.text
            time.sleep(0.1)
        assert "Which city is the offsite in?" in page.text
        empty = client.post(
            f"/runs/{asked}/answer", data={"step": "q", "text": " ", "csrf_token": csrf}
        )
        assert empty.status_code == 400 and "Write an answer first" in empty.text
        wrong = client.post(
            f"/runs/{asked}/answer", data={"step": "w", "text": "Lisbon", "csrf_token": csrf}
        )
        assert wrong.status_code == 400 and "has no question at step" in wrong.text
        ok = client.post(
            f"/runs/{asked}/answer", data={"step": "q", "text": "Lisbon", "csrf_token": csrf}
        )
        assert ok.status_code == 200 and "the run continues" in ok.text
        assert wait_run(client, asked)["status"] == "completed"

        stopped = submit(client, csrf, "plan the next offsite")
        while "The run asks you" not in client.get(f"/runs/{stopped}").text:
            assert time.monotonic() < deadline + 60
            time.sleep(0.1)
        client.post("/logout", data={"csrf_token": csrf})
        viewer_csrf = log_in(client, "vic")
        assert (
            client.post(f"/runs/{stopped}/cancel", data={"csrf_token": viewer_csrf}).status_code
            == 403
        )
        client.post("/logout", data={"csrf_token": viewer_csrf})
        csrf = log_in(client, "olga")
        cancelled = client.post(f"/runs/{stopped}/cancel", data={"csrf_token": csrf})
        assert cancelled.status_code == 200 and "ends cancelled" in cancelled.text
        assert wait_run(client, stopped)["status"] == "cancelled"
        late = client.post(f"/runs/{stopped}/cancel", data={"csrf_token": csrf})
        assert late.status_code == 400 and "already ended" in late.text
    assert (workspace / "offsite.md").read_text() == "Offsite city: Lisbon"


def test_a_delegated_run_shows_in_the_tree_and_the_live_stream(workspace: Path) -> None:
    from openlam.testing import scripted_model

    parent = {
        "steps": [
            {
                "id": "d",
                "action": "delegate",
                "args": {
                    "agent": "competitive_intelligence_analyst",
                    "goal": "note what Initech sells",
                },
            }
        ]
    }
    child = {
        "steps": [
            {
                "id": "n",
                "action": "files.write",
                "args": {"path": "initech.md", "content": "Initech sells staplers"},
            }
        ]
    }
    scripted_model("test:web-delegate", [parent, child])
    (workspace / "openlam.toml").write_text('[openlam]\nmodel = "test:web-delegate"\n')
    app = create_app(settings=load_settings(workspace).with_overrides(step_timeout=5.0))
    app.state.credentials.add_user("olga", "operator", PASSWORD)
    with TestClient(app) as client:
        csrf = log_in(client, "olga")
        answer = client.post(
            "/goal",
            data={"goal": "research Initech", "agent": "head_of_research", "csrf_token": csrf},
            follow_redirects=False,
        )
        run_id = answer.headers["location"].rsplit("/", 1)[1]
        run = wait_run(client, run_id)
        assert run["status"] == "completed", run["summary"]
        with client.stream("GET", f"/runs/{run_id}/live") as stream:
            body = "".join(stream.iter_text())
        page = client.get(f"/runs/{run_id}").text
    child_id = f"{run_id}.d"
    assert 'class="ev ev-step-finished child"' in body and f"↳ {child_id}" in body
    assert 'id="tree" hx-swap-oob="true"' in body  # the tree grew while it was watched
    assert f'href="/runs/{child_id}"' in page and "competitive_intelligence_analyst" in page
    assert f"/runs/{run_id}/files/initech.md" in page  # the child's deliverable, from the top
