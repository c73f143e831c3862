"""A goal through the durable loop (scripted model): look a contact up in the CRM, read a
page from a local web server, write a PDF brief and email it through a real SMTP server.

Exactly one message arrives, with the PDF attached, and the CRM records the activity."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from openlam.actions.builtin import crm
from openlam.loop.state import RunStatus
from openlam.testing import run_goal
from tests.conftest import LOCAL_NETWORK, allow_policy
from tests.fakes.action_ctx import action_context

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")

PASSWORD = "brief-goal-smtp-pass"


class Inbox:
    def __init__(self) -> None:
        self.received: list[bytes] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.append(bytes(envelope.original_content or envelope.content))
        return "250 accepted"


def _auth(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
    ok = isinstance(data, LoginPassword) and data.password == PASSWORD.encode()
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    inbox = Inbox()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=port,
        authenticator=_auth,
        auth_required=True,
        auth_require_tls=False,
        server_hostname="mail.openlam.test",
    )
    controller.start()
    yield inbox, port
    controller.stop()


@pytest.mark.timeout(90)
async def test_brief_goal_emails_one_pdf_and_records_the_activity(
    workspace: Path, site: Any, smtp: tuple[Inbox, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    inbox, port = smtp
    monkeypatch.setenv("SMTP_PASSWORD", PASSWORD)
    toml = (
        '[email]\nfrom = "OpenLAM <agent@openlam.test>"\n'
        f'[email.smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\n'
        'username = "agent"\n' + LOCAL_NETWORK
    )  # the page is on loopback
    # the user who asks for the email to jane@acme.test allows this workspace to send it
    allow_policy(workspace, "scope: org\nallow_external: [email.send]\n")
    seed = action_context(workspace, toml)
    crm.contact_upsert(seed, email="jane@acme.test", name="Jane Roe", title="CTO", company="Acme")

    plan = {
        "steps": [
            {"id": "contact", "action": "crm.contact_get", "args": {"email": "jane@acme.test"}},
            {"id": "page", "action": "http.get", "args": {"url": f"{site.url}/page.html"}},
            {
                "id": "brief",
                "action": "documents.write_pdf",
                "depends_on": ["contact", "page"],
                "args": {
                    "path": "brief.pdf",
                    "title": "Brief: ${contact.output.company}",
                    "content": "For ${contact.output.name} (${contact.output.title}).\n\n"
                    "## What their site says\n\n${page.output.text}",
                },
            },
            # The address and the file name come from the goal, not from tool output.
            {
                "id": "mail",
                "action": "email.send",
                "depends_on": ["brief"],
                "args": {
                    "to": ["jane@acme.test"],
                    "subject": "Your Acme brief",
                    "body": "Hello Jane,\n\nthe brief is attached.\n",
                    "attachments": ["brief.pdf"],
                },
            },
            {
                "id": "log",
                "action": "crm.activity_log",
                "depends_on": ["mail"],
                "args": {
                    "kind": "email",
                    "contact_email": "jane@acme.test",
                    "summary": "Sent the Acme brief (${mail.output.message_id})",
                },
            },
        ]
    }
    outcome = await run_goal(
        "Brief Jane at Acme: look her up, read acme's page, write a "
        "PDF brief and email it to jane@acme.test",
        [plan],
        workspace,
    )

    assert outcome.status is RunStatus.completed, outcome.summary
    assert "brief.pdf" in outcome.deliverables
    assert len(inbox.received) == 1
    msg = BytesParser(policy=policy.default).parsebytes(inbox.received[0])
    assert isinstance(msg, EmailMessage)
    assert msg["To"] == "jane@acme.test" and msg["Subject"] == "Your Acme brief"
    files = list(msg.iter_attachments())
    assert [(f.get_filename(), f.get_content_type()) for f in files] == [
        ("brief.pdf", "application/pdf")
    ]
    pdf = files[0].get_content()
    assert pdf.startswith(b"%PDF-") and pdf == (workspace / "brief.pdf").read_bytes()

    mail = next(s for s in outcome.steps if s.id == "mail")
    assert mail.output["message_id"] == msg["Message-ID"]
    # Called directly: once the workforce has closed, DBOS's executor (which it installs as
    # the event loop's default) is shut down, so asyncio.to_thread no longer works here.
    contact = crm.contact_get(seed, email="jane@acme.test")
    assert [(a["kind"], a["summary"]) for a in contact["activities"]] == [
        ("email", f"Sent the Acme brief ({msg['Message-ID']})")
    ]
    assert contact["activities"][0]["run_id"] == outcome.run_id
