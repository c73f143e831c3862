"""email: sending through a real SMTP server (aiosmtpd) and reading a real IMAP server
(pymap's dict backend), both on loopback."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
import threading
from argparse import Namespace
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from openlam.actions.builtin.email import message_id_for
from openlam.actions.registry import load_plugins
from openlam.actions.spec import ActionContext
from openlam.errors import ActionError
from openlam.loop.act import execute
from tests.fakes.action_ctx import action_context

REGISTRY = load_plugins()
pytestmark = pytest.mark.filterwarnings(  # the "none" and "ssl" peers allow AUTH without STARTTLS
    "ignore:Requiring AUTH while not requiring TLS:UserWarning"
)
USER, PASSWORD = "agent@openlam.test", "correct horse"
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


async def call(action_name: str, ctx: ActionContext, /, **args: Any) -> Any:
    spec = REGISTRY.get(action_name)
    assert spec is not None, f"{action_name} is not registered"
    return await spec.call(ctx, args)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- a certificate for the TLS modes -------------------------------------------------


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


def server_tls(cert: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*map(str, cert))
    return context


# --- SMTP ----------------------------------------------------------------------------


class Inbox:
    """An aiosmtpd handler that keeps what it receives; refuses @refused.test recipients."""

    def __init__(self) -> None:
        self.envelopes: list[tuple[str, list[str], bytes]] = []

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if address.endswith("@refused.test"):
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append(
            (
                envelope.mail_from,
                list(envelope.rcpt_tos),
                bytes(envelope.original_content or envelope.content),
            )
        )
        return "250 Message accepted for delivery"

    def messages(self) -> list[EmailMessage]:
        return [
            BytesParser(policy=policy.default).parsebytes(raw)  # type: ignore[misc]
            for _, _, raw in self.envelopes
        ]


def authenticator(
    server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == USER.encode()
        and auth_data.password == PASSWORD.encode()
    )
    return AuthResult(success=ok, handled=False)  # aiosmtpd answers 235 or 535 itself


class SMTPPeer:
    def __init__(self, mode: str, cert: tuple[Path, Path], inbox: Inbox | None = None) -> None:
        self.mode = mode
        self.inbox = inbox or Inbox()
        self.port = free_port()
        kwargs: dict[str, Any] = {"authenticator": authenticator, "auth_required": True}
        if mode == "ssl":  # the whole connection is TLS, which aiosmtpd cannot tell
            kwargs.update(ssl_context=server_tls(cert), auth_require_tls=False)
        elif mode == "starttls":
            kwargs.update(tls_context=server_tls(cert), require_starttls=True)
        else:
            kwargs["auth_require_tls"] = False
        self.controller = Controller(
            self.inbox,
            hostname="127.0.0.1",
            port=self.port,
            server_hostname="mail.openlam.test",
            **kwargs,
        )

    def toml(self, cert: Path | None, **extra: Any) -> str:
        lines = [
            "[email]",
            'from = "OpenLAM Agent <agent@openlam.test>"',
            "[email.smtp]",
            'host = "127.0.0.1"',
            f"port = {self.port}",
            f'security = "{self.mode}"',
            f'username = "{USER}"',
            "timeout = 10",
        ]
        if cert is not None:
            lines.append(f'ca_file = "{cert}"')
        lines += [f"{k} = {v!r}".replace("'", '"') for k, v in extra.items()]
        return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def smtp_servers(cert: tuple[Path, Path]) -> Iterator[dict[str, SMTPPeer]]:
    peers = {mode: SMTPPeer(mode, cert) for mode in ("starttls", "ssl", "none")}
    for peer in peers.values():
        peer.controller.start()
    yield peers
    for peer in peers.values():
        peer.controller.stop()


@pytest.fixture
def smtp(smtp_servers: dict[str, SMTPPeer]) -> dict[str, SMTPPeer]:
    for peer in smtp_servers.values():
        peer.inbox.envelopes.clear()
    return smtp_servers


def smtp_ctx(
    workspace: Path,
    peer: SMTPPeer,
    cert: tuple[Path, Path] | None,
    password: str = PASSWORD,
    step: str = "send-1",
) -> ActionContext:
    return action_context(
        workspace, peer.toml(cert[0] if cert else None), {"SMTP_PASSWORD": password}, step_id=step
    )


async def test_send_with_a_pdf_attachment_arrives_exactly_once(
    workspace: Path, smtp: dict[str, SMTPPeer], cert: tuple[Path, Path]
) -> None:
    peer = smtp["starttls"]
    (workspace / "out").mkdir()
    (workspace / "out" / "brief.pdf").write_bytes(PDF)
    ctx = smtp_ctx(workspace, peer, cert)
    args = {
        "to": ["Jane Roe <jane@example.com>"],
        "cc": ["boss@example.com"],
        "bcc": ["audit@example.com"],
        "subject": "Your brief — Q3",
        "body": "Hello Jane,\n\nthe brief is attached.\n",
        "attachments": ["out/brief.pdf"],
    }
    sent = await call("email.send", ctx, **args)
    assert sent["message_id"] == message_id_for("run-1:send-1", "agent@openlam.test")
    assert sent["recipients"] == ["jane@example.com", "boss@example.com", "audit@example.com"]
    assert sent["refused"] == {} and sent["already_sent"] is False
    assert sent["attachments"] == ["out/brief.pdf"]

    # The step runs again (a retry, or a run recovered after a crash): nothing is re-sent.
    again = await call("email.send", smtp_ctx(workspace, peer, cert), **args)
    assert again["already_sent"] is True and again["message_id"] == sent["message_id"]
    assert len(peer.inbox.envelopes) == 1

    mail_from, rcpt_tos, _ = peer.inbox.envelopes[0]
    assert mail_from == "agent@openlam.test"
    assert rcpt_tos == ["jane@example.com", "boss@example.com", "audit@example.com"]
    msg = peer.inbox.messages()[0]
    assert msg["Message-ID"] == sent["message_id"]
    assert msg["Subject"] == "Your brief — Q3"
    assert msg["To"] == "Jane Roe <jane@example.com>" and msg["Cc"] == "boss@example.com"
    assert msg["Bcc"] is None
    body = msg.get_body(preferencelist=("plain",))
    assert body is not None and "the brief is attached" in body.get_content()
    files = list(msg.iter_attachments())
    assert [(f.get_filename(), f.get_content_type()) for f in files] == [
        ("brief.pdf", "application/pdf")
    ]
    assert files[0].get_content() == PDF

    # Another step is another message.
    other = await call(
        "email.send",
        smtp_ctx(workspace, peer, cert, step="send-2"),
        to=["jane@example.com"],
        subject="Follow-up",
        body="x",
    )
    assert other["message_id"] != sent["message_id"]
    assert len(peer.inbox.envelopes) == 2


async def test_implicit_tls_and_an_untrusted_certificate(
    workspace: Path, smtp: dict[str, SMTPPeer], cert: tuple[Path, Path]
) -> None:
    peer = smtp["ssl"]
    sent = await call(
        "email.send",
        smtp_ctx(workspace, peer, cert),
        to=["a@example.com"],
        subject="TLS",
        body="over implicit TLS",
        html="<p>over TLS</p>",
    )
    assert sent["recipients"] == ["a@example.com"]
    msg = peer.inbox.messages()[0]
    assert msg.get_body(preferencelist=("html",)) is not None

    untrusted = smtp_ctx(workspace, peer, None, step="send-untrusted")
    with pytest.raises(ActionError, match=rf"127\.0\.0\.1:{peer.port}.*certificate.*ca_file"):
        await call("email.send", untrusted, to=["a@example.com"], subject="x", body="x")
    assert len(peer.inbox.envelopes) == 1


async def test_bad_recipients_are_named(
    workspace: Path, smtp: dict[str, SMTPPeer], cert: tuple[Path, Path]
) -> None:
    peer = smtp["starttls"]
    ctx = smtp_ctx(workspace, peer, cert)
    with pytest.raises(ActionError, match=r"to: 'jane@@example\.com' is not a valid email"):
        await call(
            "email.send", ctx, to=["ok@example.com", "jane@@example.com"], subject="x", body="x"
        )
    with pytest.raises(ActionError, match=r"cc: 'bob@localhost-\.com' is not a valid .*domain"):
        await call(
            "email.send",
            ctx,
            to=["ok@example.com"],
            cc=["bob@localhost-.com"],
            subject="x",
            body="x",
        )
    with pytest.raises(ActionError, match="no @domain"):
        await call("email.send", ctx, to=["just-a-name"], subject="x", body="x")
    assert peer.inbox.envelopes == []

    # The server refuses every recipient: a failure naming the address and the reason.
    with pytest.raises(
        ActionError,
        match=r"refused every recipient \(nobody@refused\.test: "
        r"550 5\.1\.1 mailbox unavailable\)",
    ) as err:
        await call("email.send", ctx, to=["nobody@refused.test"], subject="x", body="x")
    assert not err.value.transient
    # It refuses one of two: the message goes to the other, and verification says who not.
    spec = REGISTRY.get("email.send")
    assert spec is not None and spec.verify is not None
    partial = await call(
        "email.send",
        smtp_ctx(workspace, peer, cert, step="send-p"),
        to=["ok@example.com", "nobody@refused.test"],
        subject="x",
        body="x",
    )
    assert partial["recipients"] == ["ok@example.com"]
    assert list(partial["refused"]) == ["nobody@refused.test"]
    assert spec.verify({}, partial, ctx) == (
        "the server refused nobody@refused.test (550 5.1.1 mailbox unavailable)"
    )
    assert [rcpts for _, rcpts, _ in peer.inbox.envelopes] == [["ok@example.com"]]


async def test_unreachable_server_and_wrong_credentials(
    workspace: Path, smtp: dict[str, SMTPPeer], cert: tuple[Path, Path]
) -> None:
    peer = smtp["none"]
    wrong = smtp_ctx(workspace, peer, None, password="wrong")
    with pytest.raises(
        ActionError,
        match=rf"SMTP server 127\.0\.0\.1:{peer.port} rejected "
        r"the login of 'agent@openlam\.test' \(535.*"
        "SMTP_PASSWORD",
    ) as err:
        await call("email.send", wrong, to=["a@example.com"], subject="x", body="x")
    assert not err.value.transient

    closed = free_port()
    ctx = action_context(
        workspace,
        peer.toml(None).replace(f"port = {peer.port}", f"port = {closed}"),
        {"SMTP_PASSWORD": PASSWORD},
    )
    with pytest.raises(
        ActionError,
        match=rf"SMTP server 127\.0\.0\.1:{closed} refused the "
        "connection",
    ) as err:
        await call("email.send", ctx, to=["a@example.com"], subject="x", body="x")
    assert err.value.transient  # worth retrying: the server may be restarting

    # Plain SMTP to a remote host would expose the password: refused before connecting.
    remote = action_context(
        workspace,
        peer.toml(None).replace('"127.0.0.1"', '"mail.example.com"'),
        {"SMTP_PASSWORD": PASSWORD},
    )
    with pytest.raises(ActionError, match="refusing to send SMTP_PASSWORD unencrypted"):
        await call("email.send", remote, to=["a@example.com"], subject="x", body="x")
    assert peer.inbox.envelopes == []


async def test_configuration_and_attachment_mistakes(
    workspace: Path, smtp: dict[str, SMTPPeer], cert: tuple[Path, Path]
) -> None:
    empty = action_context(workspace, '[email]\nfrom = "a@example.com"\n')
    with pytest.raises(ActionError, match=r"no SMTP server is configured; add \[email\.smtp\]"):
        await call("email.send", empty, to=["b@example.com"], subject="x", body="x")
    no_secret = action_context(workspace, smtp["starttls"].toml(cert[0]))
    with pytest.raises(ActionError, match="secret SMTP_PASSWORD is not set"):
        await call("email.send", no_secret, to=["b@example.com"], subject="x", body="x")

    ctx = smtp_ctx(workspace, smtp["starttls"], cert)
    with pytest.raises(ActionError, match="outside the workspace"):
        await call(
            "email.send",
            ctx,
            to=["b@example.com"],
            subject="x",
            body="x",
            attachments=["../../etc/passwd"],
        )
    with pytest.raises(ActionError, match=r"attachment 'missing\.pdf' is not a file"):
        await call(
            "email.send",
            ctx,
            to=["b@example.com"],
            subject="x",
            body="x",
            attachments=["missing.pdf"],
        )
    with pytest.raises(ActionError, match="a subject is one line"):
        await call(
            "email.send", ctx, to=["b@example.com"], subject="x\r\nBcc: evil@x.com", body="x"
        )
    assert smtp["starttls"].inbox.envelopes == []


# --- IMAP ----------------------------------------------------------------------------


def _seed_messages() -> list[tuple[bytes, datetime, frozenset[str]]]:
    plain = EmailMessage()
    plain["From"] = "Bob Stone <bob@example.org>"
    plain["To"] = USER
    plain["Subject"] = "Quarterly report"
    plain["Date"] = "Mon, 02 Nov 2026 09:00:00 +0000"
    plain["Message-ID"] = "<q3@example.org>"
    plain.set_content("Revenue grew 12% this quarter.\n")

    html = EmailMessage()
    html["From"] = "Carol Diaz <carol@example.net>"
    html["To"] = USER
    html["Subject"] = "Grüße aus Köln"
    html["Date"] = "Tue, 03 Nov 2026 10:00:00 +0000"
    html.set_content("<h1>Hallo</h1><p>See you <b>Friday</b>.</p>", subtype="html")

    invoice = EmailMessage()
    invoice["From"] = "billing@example.org"
    invoice["To"] = USER
    invoice["Cc"] = "accounts@example.org"
    invoice["Subject"] = "Invoice 42"
    invoice["Date"] = "Wed, 04 Nov 2026 11:00:00 +0000"
    invoice.set_content("Please find the invoice attached.\n")
    invoice.add_attachment(PDF, maintype="application", subtype="pdf", filename="invoice-42.pdf")
    return [
        (plain.as_bytes(), datetime(2026, 11, 2, 9, tzinfo=UTC), frozenset()),
        (html.as_bytes(), datetime(2026, 11, 3, 10, tzinfo=UTC), frozenset()),
        (invoice.as_bytes(), datetime(2026, 11, 4, 11, tzinfo=UTC), frozenset({"\\Seen"})),
    ]


class IMAPPeer:
    """pymap's in-memory backend serving plain IMAP on loopback from its own thread."""

    def __init__(self) -> None:
        self.port = 0
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="pymap", daemon=True)

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(15):
            raise RuntimeError("pymap did not start")
        if self._error:
            raise self._error

    def stop(self) -> None:
        if self._loop and self._stop:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        from proxyprotocol.reader import ProxyProtocolReader
        from pymap.backend.dict import DictBackend
        from pymap.imap import IMAPServer
        from pymap.parsing.message import AppendMessage
        from pymap.parsing.specials.flag import Flag

        args = Namespace(
            debug=False,
            passlib_cfg=None,
            host="127.0.0.1",
            port=0,
            cert=None,
            key=None,
            tls=False,
            inherited_sockets=None,
            proxy_protocol=None,
            demo_data=False,
            demo_user=USER,
            demo_password=PASSWORD,
        )
        backend, config = await DictBackend.init(args, invalid_user_sleep=0.0)
        config.apply_context()
        async with backend.login.demo_user_identity.new_session() as session:
            inbox = await session.mailbox_set.get_mailbox("INBOX")
            for raw, when, flags in _seed_messages():
                await inbox.append(
                    AppendMessage(raw, when, frozenset(Flag(f.encode()) for f in flags))
                )
            await session.mailbox_set.add_mailbox("Archive")
            await session.mailbox_set.add_mailbox("Sent")
        server = IMAPServer(backend.login, config)
        listener = await asyncio.start_server(
            ProxyProtocolReader(config.proxy_protocol).get_callback(server),
            host="127.0.0.1",
            port=0,
        )
        self.port = listener.sockets[0].getsockname()[1]
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        self._ready.set()
        async with listener:
            await self._stop.wait()


@pytest.fixture(scope="module")
def imap() -> Iterator[IMAPPeer]:
    with pytest.MonkeyPatch.context() as env:
        env.setenv("FQDN", "imap.openlam.test")  # read for each greeting; spares DNS lookups
        peer = IMAPPeer()
        peer.start()
        yield peer
        peer.stop()


def imap_ctx(
    workspace: Path, peer: IMAPPeer, password: str = PASSWORD, port: int | None = None
) -> ActionContext:
    toml = (
        '[email.imap]\nhost = "127.0.0.1"\n'
        f'port = {port or peer.port}\nsecurity = "none"\nusername = "{USER}"\n'
    )
    return action_context(workspace, toml, {"IMAP_PASSWORD": password})


async def test_list_newest_first_without_marking_read(workspace: Path, imap: IMAPPeer) -> None:
    ctx = imap_ctx(workspace, imap)
    listed = await call("email.list", ctx)
    assert listed["total"] == 3
    subjects = [m["subject"] for m in listed["messages"]]
    assert subjects == ["Invoice 42", "Grüße aus Köln", "Quarterly report"]
    first = listed["messages"][-1]
    assert first["sender"] == "Bob Stone <bob@example.org>" and first["to"] == [USER]
    assert first["message_id"] == "<q3@example.org>"
    assert first["date"] == "2026-11-02T09:00:00+00:00" and first["size"] > 0
    assert [m["seen"] for m in listed["messages"]] == [True, False, False]

    unread = await call("email.list", ctx, unread_only=True, limit=1)
    assert unread["total"] == 2
    assert [m["subject"] for m in unread["messages"]] == ["Grüße aus Köln"]

    empty = await call("email.list", ctx, mailbox="Archive")
    assert empty == {"mailbox": "Archive", "total": 0, "messages": []}


async def test_read_text_html_and_attachments(workspace: Path, imap: IMAPPeer) -> None:
    ctx = imap_ctx(workspace, imap)
    uids = {m["subject"]: m["uid"] for m in (await call("email.list", ctx))["messages"]}

    invoice = await call("email.read", ctx, uid=uids["Invoice 42"])
    assert invoice["text"].strip() == "Please find the invoice attached."
    assert invoice["cc"] == ["accounts@example.org"] and invoice["html"] is False
    assert invoice["attachments"] == [
        {"filename": "invoice-42.pdf", "content_type": "application/pdf", "bytes": len(PDF)}
    ]

    greeting = await call("email.read", ctx, uid=uids["Grüße aus Köln"], max_chars=12)
    assert greeting["html"] is True and greeting["truncated"] is True
    assert greeting["text"] == "# Hallo\n\nSee"
    # Reading did not mark it as read.
    after = await call("email.list", ctx, unread_only=True)
    assert "Grüße aus Köln" in [m["subject"] for m in after["messages"]]

    with pytest.raises(ActionError, match="no message with UID 999999 in INBOX"):
        await call("email.read", ctx, uid=999999)


async def test_search_by_text_sender_subject_and_date(workspace: Path, imap: IMAPPeer) -> None:
    ctx = imap_ctx(workspace, imap)

    async def subjects(**criteria: Any) -> list[str]:
        found = await call("email.search", ctx, **criteria)
        return [m["subject"] for m in found["messages"]]

    assert await subjects(text="revenue") == ["Quarterly report"]
    assert await subjects(sender="carol") == ["Grüße aus Köln"]
    assert await subjects(subject="Grüße") == ["Grüße aus Köln"]  # a UTF-8 literal
    assert await subjects(since=date(2026, 11, 3)) == ["Invoice 42", "Grüße aus Köln"]
    assert await subjects(before=date(2026, 11, 3), text="quarter") == ["Quarterly report"]
    assert await subjects(unread_only=True, sender="example.org") == ["Quarterly report"]
    assert await subjects(text="no such words anywhere") == []


async def test_imap_failures_name_the_server_and_cause(workspace: Path, imap: IMAPPeer) -> None:
    with pytest.raises(
        ActionError,
        match=rf"IMAP server 127\.0\.0\.1:{imap.port} rejected the "
        r"login of 'agent@openlam\.test' .*IMAP_PASSWORD",
    ):
        await call("email.list", imap_ctx(workspace, imap, password="nope"))
    closed = free_port()
    with pytest.raises(ActionError, match=rf"IMAP server 127\.0\.0\.1:{closed} refused") as err:
        await call("email.search", imap_ctx(workspace, imap, port=closed), text="x")
    assert err.value.transient
    with pytest.raises(ActionError, match="has no mailbox 'Nowhere'"):
        await call("email.list", imap_ctx(workspace, imap), mailbox="Nowhere")
    with pytest.raises(ActionError, match=r"no IMAP server is configured; add \[email\.imap\]"):
        await call("email.list", action_context(workspace, ""))


# --- exactly once and verified ------------------------------------------------------

SEND = REGISTRY.get("email.send")


async def test_find_effect_finds_a_sent_message(
    workspace: Path, smtp: dict[str, SMTPPeer], cert: tuple[Path, Path]
) -> None:
    assert SEND is not None and SEND.find_effect is not None
    assert SEND.delivery == "checked" and SEND.egress
    peer = smtp["starttls"]
    args = {"to": ["jane@example.com"], "subject": "Once", "body": "only once"}
    assert await SEND.find_effect(args, smtp_ctx(workspace, peer, cert)) is None
    sent = await call("email.send", smtp_ctx(workspace, peer, cert), **args)
    # The process died before the step's result was saved: recovery asks first.
    found = await SEND.find_effect(args, smtp_ctx(workspace, peer, cert))
    assert found is not None and found["already_sent"] is True
    assert (found["message_id"], found["recipients"]) == (sent["message_id"], sent["recipients"])
    assert await SEND.find_effect(args, smtp_ctx(workspace, peer, cert, step="other")) is None
    assert len(peer.inbox.envelopes) == 1


class FilingInbox(Inbox):
    """An SMTP server that files what it accepts in the sender's Sent mailbox (as Gmail
    does), on the IMAP server at ``imap_port``."""

    def __init__(self, imap_port: int) -> None:
        super().__init__()
        self.imap_port = imap_port

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        import imaplib

        answer = await super().handle_DATA(server, session, envelope)
        client = imaplib.IMAP4("127.0.0.1", self.imap_port, timeout=10)
        client.login(USER, PASSWORD)
        client.append("Sent", "(\\Seen)", None, self.envelopes[-1][2])
        client.logout()
        return answer


def sent_mailbox_toml(smtp_port: int, imap_port: int) -> str:
    return (
        '[email]\nfrom = "OpenLAM Agent <agent@openlam.test>"\n'
        f'[email.smtp]\nhost = "127.0.0.1"\nport = {smtp_port}\nsecurity = "none"\n'
        f'[email.imap]\nhost = "127.0.0.1"\nport = {imap_port}\nsecurity = "none"\n'
        f'username = "{USER}"\nsent_mailbox = "Sent"\n'
    )


async def test_the_sent_mailbox_verifies_and_remembers_a_send(
    tmp_path: Path, imap: IMAPPeer
) -> None:
    filing = FilingInbox(imap.port)
    controller = Controller(filing, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        toml = sent_mailbox_toml(controller.port, imap.port)
        args = {"to": ["jane@example.com"], "subject": "Filed", "body": "kept in Sent"}
        first = tmp_path / "first"
        first.mkdir()
        ctx = action_context(first, toml, {"IMAP_PASSWORD": PASSWORD}, step_id="filed")
        assert SEND is not None and SEND.find_effect is not None
        result = await execute(SEND, ctx, args, timeout=30, retries=0)
        assert result.status == "succeeded", result.error
        # Another machine (no sent log of its own) recovering the same step finds the
        # message in the Sent mailbox and does not send it again.
        second = tmp_path / "second"
        second.mkdir()
        elsewhere = action_context(second, toml, {"IMAP_PASSWORD": PASSWORD}, step_id="filed")
        found = await SEND.find_effect(args, elsewhere)
        assert found is not None and found["message_id"] == result.output["message_id"]
        assert found["recipients"] == ["jane@example.com"]
        again = await call("email.send", elsewhere, **args)
        assert again["already_sent"] is True and len(filing.envelopes) == 1
    finally:
        controller.stop()


async def test_a_server_that_accepts_but_does_not_file_is_caught(
    workspace: Path, imap: IMAPPeer
) -> None:
    inbox = Inbox()  # answers 250, files nothing
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        ctx = action_context(
            workspace,
            sent_mailbox_toml(controller.port, imap.port),
            {"IMAP_PASSWORD": PASSWORD},
            step_id="unfiled",
        )
        assert SEND is not None
        result = await execute(
            SEND,
            ctx,
            {"to": ["jane@example.com"], "subject": "Lost", "body": "x"},
            timeout=30,
            retries=0,
        )
        assert result.status == "failed"
        assert "not verified" in result.error
        assert "is not in the mailbox 'Sent'" in result.error
        assert len(inbox.envelopes) == 1
    finally:
        controller.stop()
