"""email: send over SMTP; list, read and search a mailbox over IMAP.

Servers are configured in ``openlam.toml``; passwords come from the secrets
``SMTP_PASSWORD`` and ``IMAP_PASSWORD``, never from the file::

    [email]
    from = "OpenLAM <assistant@example.com>"

    [email.smtp]
    host = "smtp.example.com"
    port = 587                # default from security: 465 ssl, 587 starttls, 25 none
    security = "starttls"     # ssl | starttls | none
    username = "assistant@example.com"

    [email.imap]
    host = "imap.example.com"
    security = "ssl"          # port 993; starttls and none use 143
    username = "assistant@example.com"
    sent_mailbox = "Sent"     # optional: where the server files what you send (Gmail does)

Exactly once: a sent message's Message-ID is derived from the step's idempotency key, and
every send is recorded in the project database (the sent log). Before sending, and when
the runtime recovers a step that was in flight (``find_effect``), the sent log — and the
IMAP ``sent_mailbox`` when one is configured — is searched for that Message-ID: a message
already sent is not sent again, and the earlier result is returned. Only a crash between
the SMTP server's acceptance and the sent log's commit (milliseconds) can repeat a send
when no ``sent_mailbox`` is configured.

Verification: the server must have accepted every recipient, and the message must be in
the sent log — and, with ``sent_mailbox``, in that mailbox on the IMAP server.
"""

from __future__ import annotations

import asyncio
import hashlib
import imaplib
import json
import mimetypes
import re
import smtplib
import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, date, datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import format_datetime, getaddresses, parsedate_to_datetime
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Column, DateTime, MetaData, String, Table, Text, insert, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from typing_extensions import TypedDict

from openlam.actions.spec import ActionContext, Risk, action
from openlam.actions.workspace import relative, resolve
from openlam.config import Settings, load_settings
from openlam.errors import ActionError
from openlam.memory.engines import engine_for

MAX_ATTACHMENT_BYTES = 25_000_000
MAX_RECIPIENTS = 100
DEFAULT_TIMEOUT = 20.0
SECURITY = ("ssl", "starttls", "none")
DEFAULT_PORTS = {
    "smtp": {"ssl": 465, "starttls": 587, "none": 25},
    "imap": {"ssl": 993, "starttls": 143, "none": 143},
}
DEFAULT_SECURITY = {"smtp": "starttls", "imap": "ssl"}
PASSWORD_SECRET = {"smtp": "SMTP_PASSWORD", "imap": "IMAP_PASSWORD"}
LOOPBACK = ("127.0.0.1", "::1", "localhost")
SENT_MAILBOX_WAIT = (0.0, 0.5, 1.0, 2.0)  # seconds before each look: servers file with a delay

# --- configuration -------------------------------------------------------------------


@dataclass(frozen=True)
class Server:
    kind: str  # smtp | imap
    host: str
    port: int
    security: str
    username: str | None
    password: str | None
    timeout: float
    ca_file: str | None
    verify_tls: bool
    allow_insecure_auth: bool

    @property
    def where(self) -> str:
        return f"{self.kind.upper()} server {self.host}:{self.port}"

    def tls_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.ca_file)
        if not self.verify_tls:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context


def _settings(ctx: ActionContext) -> Settings:
    return ctx.settings if isinstance(ctx.settings, Settings) else load_settings(ctx.workspace)


def _email_config(ctx: ActionContext) -> dict[str, Any]:
    section = _settings(ctx).raw.get("email", {})
    return section if isinstance(section, dict) else {}


def _server(ctx: ActionContext, kind: str) -> Server:
    conf = _email_config(ctx).get(kind, {})
    key = f"[email.{kind}]"
    if not isinstance(conf, dict) or not conf.get("host"):
        raise ActionError(
            f"no {kind.upper()} server is configured; add {key} with host (and "
            f"port, security, username) to openlam.toml and set the secret "
            f"{PASSWORD_SECRET[kind]}"
        )
    security = str(conf.get("security", DEFAULT_SECURITY[kind])).lower()
    if security not in SECURITY:
        raise ActionError(f"{key} security = {security!r} is not one of {', '.join(SECURITY)}")
    try:
        port = int(conf.get("port", DEFAULT_PORTS[kind][security]))
        timeout = float(conf.get("timeout", DEFAULT_TIMEOUT))
    except (TypeError, ValueError):
        raise ActionError(f"{key} port and timeout must be numbers") from None
    username = conf.get("username") or None
    password = ctx.secret(PASSWORD_SECRET[kind]) if username else None
    if username and not password:
        raise ActionError(
            f"{key} username is {username!r} but the secret "
            f"{PASSWORD_SECRET[kind]} is not set; set it (environment or "
            "`openlam secrets set`) or remove the username"
        )
    ca_file = conf.get("ca_file") or None
    if ca_file and not Path(ca_file).expanduser().is_file():
        raise ActionError(f"{key} ca_file = {ca_file!r} does not exist")
    server = Server(
        kind,
        str(conf["host"]),
        port,
        security,
        username,
        password,
        timeout,
        str(Path(ca_file).expanduser()) if ca_file else None,
        bool(conf.get("verify_tls", True)),
        bool(conf.get("allow_insecure_auth")),
    )
    if (
        password
        and security == "none"
        and server.host not in LOOPBACK
        and not server.allow_insecure_auth
    ):
        raise ActionError(
            f"refusing to send {PASSWORD_SECRET[kind]} unencrypted to "
            f'{server.where}; set {key} security = "ssl" or "starttls" '
            "(or allow_insecure_auth = true on a trusted network)"
        )
    return server


def _connect_error(server: Server, exc: BaseException) -> ActionError:
    """A connection-level failure, named with its host and cause."""
    where = server.where
    if isinstance(exc, socket.gaierror):
        return ActionError(
            f"cannot resolve the {where}: {exc.strerror or exc}; check [email.{server.kind}] host"
        )
    if isinstance(exc, ConnectionRefusedError):
        return ActionError(
            f"the {where} refused the connection (is it running? check "
            f"[email.{server.kind}] host and port)",
            transient=True,
        )
    if isinstance(exc, TimeoutError | socket.timeout):
        return ActionError(f"the {where} did not answer within {server.timeout:g}s", transient=True)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return ActionError(
            f"the {where} presented a certificate that cannot be trusted "
            f"({exc.verify_message}); set [email.{server.kind}] ca_file to "
            "the CA that signed it"
        )
    if isinstance(exc, ssl.SSLError):
        hint = (
            "465 speaks ssl, 587 starttls"
            if server.kind == "smtp"
            else "993 speaks ssl, 143 starttls"
        )
        return ActionError(
            f"TLS with the {where} failed ({exc.reason or exc}); check "
            f"[email.{server.kind}] security and port ({hint})"
        )
    if isinstance(exc, OSError):
        return ActionError(f"cannot reach the {where}: {exc.strerror or exc}", transient=True)
    return ActionError(f"the {where} failed: {exc}")


# --- addresses -------------------------------------------------------------------------

_LOCAL = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+$")
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


def _checked(name: str, addr: str, value: str, field: str) -> str:
    """One mailbox checked and normalised ("Name <a@b.c>" or "a@b.c"); else a clear error."""
    local, at, domain = addr.rpartition("@")
    problem = None
    if not at or not local or not domain:
        problem = "it has no @domain"
    elif len(addr) > 254 or len(local) > 64:
        problem = "it is too long"
    elif not _LOCAL.match(local) or local.startswith(".") or local.endswith(".") or ".." in local:
        problem = f"the part before @ ({local!r}) has characters an address cannot have"
    else:
        try:
            ascii_domain = domain.encode("idna").decode("ascii")
        except UnicodeError:
            ascii_domain = ""
        labels = ascii_domain.split(".")
        if ascii_domain != "localhost" and (
            len(labels) < 2
            or not all(_LABEL.match(label) for label in labels)
            or labels[-1].isdigit()
        ):
            problem = f"{domain!r} is not a valid mail domain"
    if problem:
        raise ActionError(f"{field}: {value!r} is not a valid email address: {problem}")
    return str(Address(display_name=name, addr_spec=addr)) if name else addr


def _address(value: str, field: str) -> str:
    """Exactly one address."""
    found = _addresses([value], field)
    if len(found) != 1:
        raise ActionError(
            f"{field}: {value!r} is not one email address; give one address like jane@example.com"
        )
    return found[0]


def _addresses(values: list[str] | None, field: str) -> list[str]:
    """Every address in ``values`` (an item may hold several, comma-separated)."""
    out: list[str] = []
    for value in values or []:
        if any(c in value for c in "\r\n"):
            raise ActionError(f"{field}: {value!r} contains a line break")
        pairs = [(n, a) for n, a in getaddresses([value]) if n or a]
        if not pairs:
            raise ActionError(
                f"{field}: {value!r} is not an email address; give addresses like jane@example.com"
            )
        out.extend(_checked(n, a, value, field) for n, a in pairs)
    return out


def _bare(address: str) -> str:
    return getaddresses([address])[0][1]


# --- the sent log ----------------------------------------------------------------------

_meta = MetaData()
email_sent = Table(
    "email_sent",
    _meta,
    Column("message_id", String(300), primary_key=True),
    Column("idempotency_key", String(300), nullable=False),
    Column("run_id", String(200)),
    Column("recipients", Text, nullable=False),
    Column("refused", Text, nullable=False),
    Column("subject", Text, nullable=False),
    Column("sent_at", DateTime(timezone=True), nullable=False),
)


def _already_sent(ctx: ActionContext, message_id: str) -> Any:
    url = _settings(ctx).app_database_url
    try:
        with engine_for(url, _meta).connect() as conn:
            return conn.execute(
                select(email_sent).where(email_sent.c.message_id == message_id)
            ).first()
    except SQLAlchemyError as exc:
        raise ActionError(
            f"cannot check whether {message_id} was already sent: the project "
            f"database failed ({exc.__class__.__name__}); nothing was sent",
            transient=True,
        ) from None


def _record_sent(
    ctx: ActionContext,
    message_id: str,
    recipients: list[str],
    refused: dict[str, str],
    subject: str,
) -> None:
    url = _settings(ctx).app_database_url
    try:
        with engine_for(url, _meta).begin() as conn:
            conn.execute(
                insert(email_sent).values(
                    message_id=message_id,
                    idempotency_key=ctx.idempotency_key,
                    run_id=ctx.run_id or None,
                    recipients=json.dumps(recipients),
                    refused=json.dumps(refused),
                    subject=subject,
                    sent_at=datetime.now(UTC),
                )
            )
    except IntegrityError:
        pass  # recorded by an earlier attempt
    except SQLAlchemyError as exc:
        raise ActionError(
            f"message {message_id} WAS sent to {', '.join(recipients)}, but "
            f"recording it in the project database failed ({exc}); do not "
            "send it again"
        ) from None


# --- sending ---------------------------------------------------------------------------


class Sent(TypedDict):
    message_id: str
    recipients: list[str]
    refused: dict[str, str]
    subject: str
    attachments: list[str]
    already_sent: bool


def message_id_for(idempotency_key: str, sender: str) -> str:
    """The Message-ID of the message a step sends: the same for every attempt of the step."""
    digest = hashlib.sha256(idempotency_key.encode("utf-8")).hexdigest()[:40]
    domain = _bare(sender).rpartition("@")[2] or "openlam.invalid"
    return f"<openlam.{digest}@{domain}>"


def _attach(ctx: ActionContext, msg: EmailMessage, paths: list[str]) -> list[str]:
    names: list[str] = []
    total = 0
    for path in paths:
        file = resolve(ctx, path, for_write=False)
        if not file.is_file():
            raise ActionError(
                f"attachment {path!r} is not a file in the workspace; write it "
                "first (e.g. documents.write_pdf) or fix the path"
            )
        size = file.stat().st_size
        total += size
        if total > MAX_ATTACHMENT_BYTES:
            raise ActionError(
                f"attachments exceed {MAX_ATTACHMENT_BYTES // 1_000_000} MB "
                f"(at {path}); send fewer or smaller files, or a link instead"
            )
        kind, encoding = mimetypes.guess_type(file.name)
        if kind is None or encoding is not None:
            kind = "application/octet-stream"
        maintype, subtype = kind.split("/", 1)
        msg.add_attachment(
            file.read_bytes(), maintype=maintype, subtype=subtype, filename=file.name
        )
        names.append(relative(ctx, file))
    return names


def _sender(ctx: ActionContext) -> str:
    config = _email_config(ctx)
    smtp_conf = config.get("smtp", {}) if isinstance(config.get("smtp"), dict) else {}
    sender_raw = config.get("from") or smtp_conf.get("from") or smtp_conf.get("username")
    if not sender_raw:
        raise ActionError(
            'no sender address: set [email] from = "Name <you@example.com>" in openlam.toml'
        )
    return _address(str(sender_raw), "[email] from")


def _message_id(ctx: ActionContext, sender: str) -> str:
    return message_id_for(ctx.idempotency_key or f"{ctx.run_id}/{ctx.step_id}", sender)


def _sent_mailbox(ctx: ActionContext) -> str | None:
    imap = _email_config(ctx).get("imap", {})
    name = imap.get("sent_mailbox") if isinstance(imap, dict) else None
    return str(name) if name else None


def _filed(ctx: ActionContext, mailbox: str, message_id: str) -> MessageSummary | None:
    """The message with this Message-ID in ``mailbox`` on the IMAP server, if it is there."""
    with _imap(ctx, mailbox) as client:
        uids = _uids(client, ["HEADER", *_term("Message-ID", message_id)])
        found = _summaries(client, uids[-1:], mailbox)
    return found[0] if found else None


def _earlier(ctx: ActionContext, message_id: str, attachments: list[str]) -> Sent | None:
    """What an earlier attempt of this step sent: from the sent log, else from the IMAP
    ``sent_mailbox`` (when configured); None if neither has the message."""
    logged = _already_sent(ctx, message_id)
    if logged is not None:
        return {
            "message_id": message_id,
            "recipients": json.loads(logged.recipients),
            "refused": json.loads(logged.refused),
            "subject": logged.subject,
            "attachments": list(attachments),
            "already_sent": True,
        }
    mailbox = _sent_mailbox(ctx)
    filed = _filed(ctx, mailbox, message_id) if mailbox else None
    if filed is None:
        return None
    return {
        "message_id": message_id,
        "recipients": [_bare(a) for a in filed["to"]],
        "refused": {},
        "subject": filed["subject"],
        "attachments": list(attachments),
        "already_sent": True,
    }


async def _find_sent(args: dict[str, Any], ctx: ActionContext) -> Sent | None:
    message_id = _message_id(ctx, _sender(ctx))
    return await asyncio.to_thread(_earlier, ctx, message_id, args.get("attachments") or [])


async def _verify_sent(args: dict[str, Any], output: Any, ctx: ActionContext) -> str | None:
    refused = output.get("refused") or {}
    if refused:
        return "the server refused " + "; ".join(f"{a} ({why})" for a, why in refused.items())
    if not output.get("recipients"):
        return "no recipient accepted the message"
    message_id = output["message_id"]
    mailbox = _sent_mailbox(ctx)
    if mailbox is None:
        logged = await asyncio.to_thread(_already_sent, ctx, message_id)
        return None if logged is not None else f"{message_id} is not in the sent log"
    try:
        for wait in SENT_MAILBOX_WAIT:
            await asyncio.sleep(wait)
            if await asyncio.to_thread(_filed, ctx, mailbox, message_id) is not None:
                return None
    except ActionError as exc:
        return f"cannot look for {message_id} in the mailbox {mailbox!r}: {exc}"
    return (
        f"{message_id} is not in the mailbox {mailbox!r} ([email.imap] sent_mailbox): "
        "the SMTP server accepted it, but it was not filed as sent"
    )


@action(
    "email.send",
    risk=Risk.external,
    egress=True,
    secrets=("SMTP_PASSWORD",),
    verify=_verify_sent,
    find_effect=_find_sent,
)
def send(
    ctx: ActionContext,
    to: list[str],
    subject: str,
    body: str,
    cc: list[str] | None = None,
    bcc: list[str] | None = None,
    attachments: list[str] | None = None,
    html: str | None = None,
    reply_to: str | None = None,
    in_reply_to: str | None = None,
) -> Sent:
    """Send an email over SMTP, with files from the workspace attached.

    Sent exactly once per step: the Message-ID comes from the step's idempotency key and
    a message already sent by an earlier attempt is not sent again.

    Args:
        to: Recipient addresses, e.g. ["jane@example.com"] or ["Jane Roe <jane@example.com>"].
        subject: The subject line.
        body: The plain-text body.
        cc: Addresses to copy.
        bcc: Addresses to copy invisibly (not shown in the headers).
        attachments: Workspace paths of files to attach, e.g. ["brief.pdf"].
        html: An HTML version of the body, sent alongside the text.
        reply_to: Address replies should go to.
        in_reply_to: Message-ID of the message this answers (threads the reply).
    """
    to_list, cc_list, bcc_list = (
        _addresses(to, "to"),
        _addresses(cc, "cc"),
        _addresses(bcc, "bcc"),
    )
    everyone = to_list + cc_list + bcc_list
    if not to_list:
        raise ActionError("to: give at least one recipient address")
    if len(everyone) > MAX_RECIPIENTS:
        raise ActionError(
            f"{len(everyone)} recipients; email.send takes at most "
            f"{MAX_RECIPIENTS} — split the list"
        )
    if "\n" in subject or "\r" in subject:
        raise ActionError("subject: a subject is one line; remove the line breaks")
    sender = _sender(ctx)
    reply = _address(reply_to, "reply_to") if reply_to else None
    message_id = _message_id(ctx, sender)

    earlier = _earlier(ctx, message_id, attachments or [])
    if earlier is not None:
        return earlier

    server = _server(ctx, "smtp")
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = ", ".join(to_list)
    if cc_list:
        msg["Cc"] = ", ".join(cc_list)
    if reply:
        msg["Reply-To"] = reply
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
        msg["References"] = in_reply_to
    msg["Subject"] = subject
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg["Message-ID"] = message_id
    msg["X-Mailer"] = "OpenLAM"
    msg.set_content(body)
    if html:
        msg.add_alternative(html, subtype="html")
    names = _attach(ctx, msg, attachments or [])

    envelope = [_bare(a) for a in everyone]
    refused = _deliver(server, msg, _bare(sender), envelope)
    accepted = [a for a in envelope if a not in refused]
    _record_sent(ctx, message_id, accepted, refused, subject)
    return {
        "message_id": message_id,
        "recipients": accepted,
        "refused": refused,
        "subject": subject,
        "attachments": names,
        "already_sent": False,
    }


def _smtp_reply(code: int, text: bytes | str) -> str:
    message = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    return f"{code} {message}".strip()


def _deliver(
    server: Server, msg: EmailMessage, sender: str, recipients: list[str]
) -> dict[str, str]:
    """Hand the message to the SMTP server; returns the recipients it refused."""
    helo = socket.gethostname() or "localhost"
    client: smtplib.SMTP | None = None
    try:
        if server.security == "ssl":
            client = smtplib.SMTP_SSL(
                server.host,
                server.port,
                local_hostname=helo,
                timeout=server.timeout,
                context=server.tls_context(),
            )
        else:
            client = smtplib.SMTP(
                server.host, server.port, local_hostname=helo, timeout=server.timeout
            )
            if server.security == "starttls":
                client.ehlo()
                if not client.has_extn("starttls"):
                    raise ActionError(
                        f"the {server.where} does not offer STARTTLS; set "
                        '[email.smtp] security = "ssl" (port 465) or check '
                        "the port"
                    )
                client.starttls(context=server.tls_context())
                client.ehlo()
        if server.username and server.password:
            client.ehlo_or_helo_if_needed()
            if not client.has_extn("auth"):
                raise ActionError(
                    f"the {server.where} does not accept a login here; use "
                    'security = "starttls" or "ssl", or remove '
                    "[email.smtp] username"
                )
            client.login(server.username, server.password)
        refused = client.send_message(msg, from_addr=sender, to_addrs=recipients)
        return {addr: _smtp_reply(code, text) for addr, (code, text) in refused.items()}
    except ActionError:
        raise
    except smtplib.SMTPAuthenticationError as exc:
        raise ActionError(
            f"the {server.where} rejected the login of {server.username!r} "
            f"({_smtp_reply(exc.smtp_code, exc.smtp_error)}); check the secret "
            "SMTP_PASSWORD and [email.smtp] username"
        ) from None
    except smtplib.SMTPRecipientsRefused as exc:
        detail = "; ".join(
            f"{addr}: {_smtp_reply(code, text)}" for addr, (code, text) in exc.recipients.items()
        )
        transient = all(400 <= code < 500 for code, _ in exc.recipients.values())
        raise ActionError(
            f"the {server.where} refused every recipient ({detail}); check the addresses",
            transient=transient,
        ) from None
    except smtplib.SMTPSenderRefused as exc:
        raise ActionError(
            f"the {server.where} refused the sender {sender} "
            f"({_smtp_reply(exc.smtp_code, exc.smtp_error)}); set [email] from "
            "to an address this account may send as",
            transient=400 <= exc.smtp_code < 500,
        ) from None
    except smtplib.SMTPResponseException as exc:
        raise ActionError(
            f"the {server.where} answered {_smtp_reply(exc.smtp_code, exc.smtp_error)}",
            transient=400 <= exc.smtp_code < 500,
        ) from None
    except smtplib.SMTPServerDisconnected as exc:
        raise ActionError(
            f"the {server.where} closed the connection ({exc})", transient=True
        ) from None
    except smtplib.SMTPNotSupportedError as exc:
        raise ActionError(f"the {server.where} does not support what was asked: {exc}") from None
    except (OSError, smtplib.SMTPException) as exc:
        raise _connect_error(server, exc) from None
    finally:
        if client is not None:
            try:
                client.quit()
            except (OSError, smtplib.SMTPException):
                client.close()


# --- reading (IMAP) --------------------------------------------------------------------


class MessageSummary(TypedDict):
    uid: int
    mailbox: str
    message_id: str | None
    sender: str
    to: list[str]
    subject: str
    date: str | None
    seen: bool
    flags: list[str]
    size: int


class MessageList(TypedDict):
    mailbox: str
    total: int
    messages: list[MessageSummary]


class AttachmentInfo(TypedDict):
    filename: str
    content_type: str
    bytes: int


class MessageContent(MessageSummary):
    cc: list[str]
    reply_to: list[str]
    in_reply_to: str | None
    text: str
    truncated: bool
    html: bool
    attachments: list[AttachmentInfo]


def _quote(mailbox: str) -> str:
    if not mailbox or not mailbox.isascii() or any(c in mailbox for c in "\r\n"):
        raise ActionError(
            f"mailbox name {mailbox!r} is not supported; use an ASCII name such as INBOX or Archive"
        )
    return '"' + mailbox.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _imap_text(data: Any) -> str:
    parts = data if isinstance(data, list) else [data]
    return " ".join(
        p.decode("utf-8", "replace") if isinstance(p, bytes) else str(p)
        for p in parts
        if p is not None
    ).strip()


@contextmanager
def _imap(ctx: ActionContext, mailbox: str) -> Iterator[imaplib.IMAP4]:
    """A logged-in IMAP session with ``mailbox`` selected read-only."""
    server = _server(ctx, "imap")
    client: imaplib.IMAP4 | None = None
    try:
        try:
            if server.security == "ssl":
                client = imaplib.IMAP4_SSL(
                    server.host,
                    server.port,
                    ssl_context=server.tls_context(),
                    timeout=server.timeout,
                )
            else:
                client = imaplib.IMAP4(server.host, server.port, timeout=server.timeout)
                if server.security == "starttls":
                    client.starttls(ssl_context=server.tls_context())
        except imaplib.IMAP4.error as exc:
            raise ActionError(
                f"the {server.where} failed to start a session: "
                f"{_imap_text(exc.args)}; check [email.imap] security"
            ) from None
        except OSError as exc:
            raise _connect_error(server, exc) from None
        if server.username and server.password:
            try:
                client.login(server.username, server.password)
            except imaplib.IMAP4.abort as exc:
                raise ActionError(
                    f"the {server.where} dropped the connection during login: "
                    f"{_imap_text(exc.args)}",
                    transient=True,
                ) from None
            except imaplib.IMAP4.error as exc:
                raise ActionError(
                    f"the {server.where} rejected the login of "
                    f"{server.username!r} ({_imap_text(exc.args)}); check the "
                    "secret IMAP_PASSWORD and [email.imap] username"
                ) from None
        status, data = client.select(_quote(mailbox), readonly=True)
        if status != "OK":
            raise ActionError(
                f"the {server.where} has no mailbox {mailbox!r} "
                f"({_imap_text(data)}); list mailboxes in your mail client and "
                "use one of those names"
            )
        yield client
    except imaplib.IMAP4.abort as exc:
        raise ActionError(
            f"the {server.where} dropped the connection: {_imap_text(exc.args)}", transient=True
        ) from None
    except imaplib.IMAP4.error as exc:
        raise ActionError(f"the {server.where} answered an error: {_imap_text(exc.args)}") from None
    except (TimeoutError, OSError) as exc:
        raise _connect_error(server, exc) from None
    finally:
        if client is not None:
            with suppress(OSError, imaplib.IMAP4.error):
                client.logout()


def _uids(client: imaplib.IMAP4, criteria: list[str]) -> list[int]:
    literal = None
    args: list[str] = []
    for item in criteria:
        if item.startswith("\0"):  # a non-ASCII value travels as a literal
            if literal is not None:
                raise ActionError("give at most one non-ASCII search term at a time")
            literal = item[1:].encode("utf-8")
            continue
        args.append(item)
    if literal is not None:
        client.literal = literal  # type: ignore[attr-defined]
        status, data = client.uid("SEARCH", "CHARSET", "UTF-8", *args)
    else:
        status, data = client.uid("SEARCH", *args)
    if status != "OK":
        raise ActionError(f"the IMAP server refused the search: {_imap_text(data)}")
    return sorted({int(x) for x in _imap_text(data).split() if x.isdigit()})


_FETCH_META = re.compile(rb"UID (\d+)|FLAGS \(([^)]*)\)|RFC822\.SIZE (\d+)")
_SUMMARY_ITEMS = (
    "(UID FLAGS RFC822.SIZE BODY.PEEK[HEADER.FIELDS (FROM TO CC SUBJECT DATE MESSAGE-ID)])"
)


def _fetched(data: list[Any]) -> Iterator[tuple[int, list[str], int, bytes]]:
    """(uid, flags, size, literal) for each message in an imaplib FETCH answer."""
    for item in data:
        if not isinstance(item, tuple):
            continue
        meta, literal = item[0], item[1]
        uid, flags, size = 0, [], 0
        for m in _FETCH_META.finditer(meta):
            if m.group(1):
                uid = int(m.group(1))
            elif m.group(2) is not None:
                flags = m.group(2).decode("ascii", "replace").split()
            elif m.group(3):
                size = int(m.group(3))
        yield uid, flags, size, literal


def _header(msg: Message, name: str) -> str:
    value = msg.get(name)
    return "" if value is None else " ".join(str(value).split())


def _header_list(msg: Message, name: str) -> list[str]:
    values = msg.get_all(name) or []
    return [
        str(Address(display_name=n, addr_spec=a)) if n else a
        for n, a in getaddresses([str(v) for v in values])
        if a
    ]


def _date(msg: Message) -> str | None:
    raw = msg.get("Date")
    if not raw:
        return None
    try:
        when = parsedate_to_datetime(str(raw))
    except (TypeError, ValueError, IndexError):
        return None
    return when.isoformat()


def _summary(uid: int, flags: list[str], size: int, raw: bytes, mailbox: str) -> MessageSummary:
    msg = BytesParser(policy=policy.default).parsebytes(raw, headersonly=True)
    return {
        "uid": uid,
        "mailbox": mailbox,
        "message_id": _header(msg, "Message-ID") or None,
        "sender": ", ".join(_header_list(msg, "From")),
        "to": _header_list(msg, "To"),
        "subject": _header(msg, "Subject"),
        "date": _date(msg),
        "seen": "\\Seen" in flags,
        "flags": flags,
        "size": size,
    }


def _summaries(client: imaplib.IMAP4, uids: list[int], mailbox: str) -> list[MessageSummary]:
    if not uids:
        return []
    status, data = client.uid("FETCH", ",".join(map(str, uids)), _SUMMARY_ITEMS)
    if status != "OK":
        raise ActionError(f"the IMAP server refused to fetch messages: {_imap_text(data)}")
    found = {
        uid: _summary(uid, flags, size, raw, mailbox) for uid, flags, size, raw in _fetched(data)
    }
    return [found[u] for u in sorted(found, reverse=True)]  # newest first


@action("email.list", risk=Risk.read, idempotent=True, secrets=("IMAP_PASSWORD",))
def list_messages(
    ctx: ActionContext, mailbox: str = "INBOX", limit: int = 20, unread_only: bool = False
) -> MessageList:
    """List the newest messages of a mailbox (sender, subject, date, read or not).

    Nothing is marked as read.

    Args:
        mailbox: The mailbox (folder) name.
        limit: At most this many messages, newest first.
        unread_only: Only messages not yet read.
    """
    with _imap(ctx, mailbox) as client:
        uids = _uids(client, ["UNSEEN"] if unread_only else ["ALL"])
        chosen = uids[-max(1, limit) :]
        return {
            "mailbox": mailbox,
            "total": len(uids),
            "messages": _summaries(client, chosen, mailbox),
        }


def _imap_date(value: date) -> str:
    return f"{value.day:02d}-{value.strftime('%b')}-{value.year}"


def _term(key: str, value: str) -> list[str]:
    if any(c in value for c in "\r\n"):
        raise ActionError(f"search term {key.lower()} may not contain line breaks")
    if value.isascii():
        return [key, '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"']
    return [key, "\0" + value]


@action("email.search", risk=Risk.read, idempotent=True, secrets=("IMAP_PASSWORD",))
def search_messages(
    ctx: ActionContext,
    text: str | None = None,
    sender: str | None = None,
    subject: str | None = None,
    since: date | None = None,
    before: date | None = None,
    unread_only: bool = False,
    mailbox: str = "INBOX",
    limit: int = 20,
) -> MessageList:
    """Search a mailbox on the server; all the criteria given must match.

    Args:
        text: Words anywhere in the message (headers or body).
        sender: Text in the From address or name.
        subject: Text in the subject.
        since: Only messages from this date on (YYYY-MM-DD).
        before: Only messages before this date (YYYY-MM-DD).
        unread_only: Only messages not yet read.
        mailbox: The mailbox (folder) name.
        limit: At most this many messages, newest first.
    """
    criteria: list[str] = []
    if text:
        criteria += _term("TEXT", text)
    if sender:
        criteria += _term("FROM", sender)
    if subject:
        criteria += _term("SUBJECT", subject)
    if since:
        criteria += ["SINCE", _imap_date(since)]
    if before:
        criteria += ["BEFORE", _imap_date(before)]
    if unread_only:
        criteria.append("UNSEEN")
    with _imap(ctx, mailbox) as client:
        uids = _uids(client, criteria or ["ALL"])
        chosen = uids[-max(1, limit) :]
        return {
            "mailbox": mailbox,
            "total": len(uids),
            "messages": _summaries(client, chosen, mailbox),
        }


def _body_text(msg: EmailMessage) -> tuple[str, bool]:
    """The readable text of a message, and whether it came from its HTML part."""
    part = msg.get_body(preferencelist=("plain",))
    if part is not None:
        return _part_text(part), False
    part = msg.get_body(preferencelist=("html",))
    if part is None:
        return "", False
    from markdownify import markdownify

    return markdownify(_part_text(part), heading_style="ATX").strip(), True


def _part_text(part: Message) -> str:
    try:
        content = part.get_content()  # type: ignore[attr-defined]
    except (LookupError, ValueError):  # an unknown charset: decode what is there
        payload = part.get_payload(decode=True)
        content = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
    return content if isinstance(content, str) else ""


@action("email.read", risk=Risk.read, idempotent=True, secrets=("IMAP_PASSWORD",))
def read(
    ctx: ActionContext, uid: int, mailbox: str = "INBOX", max_chars: int = 20_000
) -> MessageContent:
    """Read one message: headers, its text (HTML turned into Markdown) and the attachments it
    carries. The message is not marked as read.

    Args:
        uid: The message's UID, from email.list or email.search.
        mailbox: The mailbox (folder) it is in.
        max_chars: Cut the text after this many characters.
    """
    with _imap(ctx, mailbox) as client:
        status, data = client.uid("FETCH", str(uid), "(UID FLAGS RFC822.SIZE BODY.PEEK[])")
        if status != "OK":
            raise ActionError(f"the IMAP server refused to fetch message {uid}: {_imap_text(data)}")
        found = [f for f in _fetched(data) if f[0] == uid]
    if not found:
        raise ActionError(
            f"no message with UID {uid} in {mailbox}; get UIDs from email.list or email.search"
        )
    _, flags, size, raw = found[0]
    msg = cast(EmailMessage, BytesParser(policy=policy.default).parsebytes(raw))
    summary = _summary(uid, flags, size or len(raw), raw, mailbox)
    text, from_html = _body_text(msg)
    attachments: list[AttachmentInfo] = []
    for part in msg.iter_attachments():
        payload = part.get_payload(decode=True)
        attachments.append(
            {
                "filename": part.get_filename() or "(unnamed)",
                "content_type": part.get_content_type(),
                "bytes": len(payload) if isinstance(payload, bytes) else 0,
            }
        )
    limit = max(0, max_chars)
    return {
        **summary,
        "cc": _header_list(msg, "Cc"),  # type: ignore[typeddict-item]
        "reply_to": _header_list(msg, "Reply-To"),
        "in_reply_to": _header(msg, "In-Reply-To") or None,
        "text": text[:limit],
        "truncated": len(text) > limit,
        "html": from_html,
        "attachments": attachments,
    }
