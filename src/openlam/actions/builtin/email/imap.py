"""Reading over IMAP: sessions, searches, and messages as summaries and content."""

from __future__ import annotations

import imaplib
import re
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import date
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import getaddresses, parsedate_to_datetime
from typing import Any

from typing_extensions import TypedDict

from openlam.actions.builtin.email.config import connect_error, server_of
from openlam.actions.spec import ActionContext
from openlam.errors import ActionError
from openlam.validation import whole_number


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


def imap_text(data: Any) -> str:
    parts = data if isinstance(data, list) else [data]
    return " ".join(
        p.decode("utf-8", "replace") if isinstance(p, bytes) else str(p)
        for p in parts
        if p is not None
    ).strip()


@contextmanager
def imap_session(ctx: ActionContext, mailbox: str) -> Iterator[imaplib.IMAP4]:
    """A logged-in IMAP session with ``mailbox`` selected read-only."""
    server = server_of(ctx, "imap")
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
                f"{imap_text(exc.args)}; check [email.imap] security"
            ) from None
        except OSError as exc:
            raise connect_error(server, exc) from None
        if server.username and server.password:
            try:
                client.login(server.username, server.password)
            except imaplib.IMAP4.abort as exc:
                raise ActionError(
                    f"the {server.where} dropped the connection during login: "
                    f"{imap_text(exc.args)}",
                    transient=True,
                ) from None
            except imaplib.IMAP4.error as exc:
                raise ActionError(
                    f"the {server.where} rejected the login of "
                    f"{server.username!r} ({imap_text(exc.args)}); check the "
                    "secret IMAP_PASSWORD and [email.imap] username"
                ) from None
        status, data = client.select(_quote(mailbox), readonly=True)
        if status != "OK":
            raise ActionError(
                f"the {server.where} has no mailbox {mailbox!r} "
                f"({imap_text(data)}); list mailboxes in your mail client and "
                "use one of those names"
            )
        yield client
    except imaplib.IMAP4.abort as exc:
        raise ActionError(
            f"the {server.where} dropped the connection: {imap_text(exc.args)}", transient=True
        ) from None
    except imaplib.IMAP4.error as exc:
        raise ActionError(f"the {server.where} answered an error: {imap_text(exc.args)}") from None
    except (TimeoutError, OSError) as exc:
        raise connect_error(server, exc) from None
    finally:
        if client is not None:
            with suppress(OSError, imaplib.IMAP4.error):
                client.logout()


def search_uids(client: imaplib.IMAP4, criteria: list[str]) -> list[int]:
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
        raise ActionError(f"the IMAP server refused the search: {imap_text(data)}")
    return sorted({uid for x in imap_text(data).split() if (uid := whole_number(x)) is not None})


_FETCH_META = re.compile(rb"UID (\d+)|FLAGS \(([^)]*)\)|RFC822\.SIZE (\d+)")


_SUMMARY_ITEMS = (
    "(UID FLAGS RFC822.SIZE BODY.PEEK[HEADER.FIELDS (FROM TO CC SUBJECT DATE MESSAGE-ID)])"
)


def fetched(data: list[Any]) -> Iterator[tuple[int, list[str], int, bytes]]:
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


def header(msg: Message, name: str) -> str:
    value = msg.get(name)
    return "" if value is None else " ".join(str(value).split())


def header_list(msg: Message, name: str) -> list[str]:
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


def summary_of(uid: int, flags: list[str], size: int, raw: bytes, mailbox: str) -> MessageSummary:
    msg = BytesParser(policy=policy.default).parsebytes(raw, headersonly=True)
    return {
        "uid": uid,
        "mailbox": mailbox,
        "message_id": header(msg, "Message-ID") or None,
        "sender": ", ".join(header_list(msg, "From")),
        "to": header_list(msg, "To"),
        "subject": header(msg, "Subject"),
        "date": _date(msg),
        "seen": "\\Seen" in flags,
        "flags": flags,
        "size": size,
    }


def summaries_of(client: imaplib.IMAP4, uids: list[int], mailbox: str) -> list[MessageSummary]:
    if not uids:
        return []
    status, data = client.uid("FETCH", ",".join(map(str, uids)), _SUMMARY_ITEMS)
    if status != "OK":
        raise ActionError(f"the IMAP server refused to fetch messages: {imap_text(data)}")
    found = {
        uid: summary_of(uid, flags, size, raw, mailbox) for uid, flags, size, raw in fetched(data)
    }
    return [found[u] for u in sorted(found, reverse=True)]  # newest first


def imap_date(value: date) -> str:
    return f"{value.day:02d}-{value.strftime('%b')}-{value.year}"


def search_term(key: str, value: str) -> list[str]:
    if any(c in value for c in "\r\n"):
        raise ActionError(f"search term {key.lower()} may not contain line breaks")
    if value.isascii():
        return [key, '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"']
    return [key, "\0" + value]


def body_text(msg: EmailMessage) -> tuple[str, bool]:
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
