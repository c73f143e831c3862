"""The email actions: ``email.send``, ``email.list``, ``email.search``, ``email.read``."""

from __future__ import annotations

import asyncio
import hashlib
import json
import mimetypes
from datetime import UTC, date, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import format_datetime
from typing import Any, cast

from typing_extensions import TypedDict

from openlam.actions.builtin.email.addresses import addresses_in, bare_address, one_address
from openlam.actions.builtin.email.config import sender_of, sent_mailbox_of, server_of
from openlam.actions.builtin.email.imap import (
    AttachmentInfo,
    MessageContent,
    MessageList,
    MessageSummary,
    body_text,
    fetched,
    header,
    header_list,
    imap_date,
    imap_session,
    imap_text,
    search_term,
    search_uids,
    summaries_of,
    summary_of,
)
from openlam.actions.builtin.email.sentlog import find_logged, ready_to_record
from openlam.actions.builtin.email.smtp import deliver
from openlam.actions.spec import ActionContext, Risk, action
from openlam.actions.threads import in_action_thread
from openlam.actions.workspace import relative, resolve
from openlam.errors import ActionError

MAX_ATTACHMENT_BYTES = 25_000_000
MAX_RECIPIENTS = 100
SENT_MAILBOX_WAIT = (0.0, 0.5, 1.0, 2.0)  # seconds before each look: servers file with a delay


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
    domain = bare_address(sender).rpartition("@")[2] or "openlam.invalid"
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


def _message_id(ctx: ActionContext, sender: str) -> str:
    return message_id_for(ctx.idempotency_key or f"{ctx.run_id}/{ctx.step_id}", sender)


def _filed(ctx: ActionContext, mailbox: str, message_id: str) -> MessageSummary | None:
    """The message with this Message-ID in ``mailbox`` on the IMAP server, if it is there."""
    with imap_session(ctx, mailbox) as client:
        uids = search_uids(client, ["HEADER", *search_term("Message-ID", message_id)])
        found = summaries_of(client, uids[-1:], mailbox)
    return found[0] if found else None


def _earlier(ctx: ActionContext, message_id: str, attachments: list[str]) -> Sent | None:
    """What an earlier attempt of this step sent: from the sent log, else from the IMAP
    ``sent_mailbox`` (when configured); None if neither has the message."""
    logged = find_logged(ctx, message_id)
    if logged is not None:
        return {
            "message_id": message_id,
            "recipients": json.loads(logged.recipients),
            "refused": json.loads(logged.refused),
            "subject": logged.subject,
            "attachments": list(attachments),
            "already_sent": True,
        }
    mailbox = sent_mailbox_of(ctx)
    filed = _filed(ctx, mailbox, message_id) if mailbox else None
    if filed is None:
        return None
    return {
        "message_id": message_id,
        "recipients": [bare_address(a) for a in filed["to"]],
        "refused": {},
        "subject": filed["subject"],
        "attachments": list(attachments),
        "already_sent": True,
    }


async def _find_sent(args: dict[str, Any], ctx: ActionContext) -> Sent | None:
    message_id = _message_id(ctx, sender_of(ctx))
    return await in_action_thread(_earlier, ctx, message_id, args.get("attachments") or [])


async def _verify_sent(args: dict[str, Any], output: Any, ctx: ActionContext) -> str | None:
    refused = output.get("refused") or {}
    if refused:
        return "the server refused " + "; ".join(f"{a} ({why})" for a, why in refused.items())
    if not output.get("recipients"):
        return "no recipient accepted the message"
    message_id = output["message_id"]
    mailbox = sent_mailbox_of(ctx)
    if mailbox is None:
        logged = await asyncio.to_thread(find_logged, ctx, message_id)
        return None if logged is not None else f"{message_id} is not in the sent log"
    try:
        for wait in SENT_MAILBOX_WAIT:
            await asyncio.sleep(wait)
            if await in_action_thread(_filed, ctx, mailbox, message_id) is not None:
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
        addresses_in(to, "to"),
        addresses_in(cc, "cc"),
        addresses_in(bcc, "bcc"),
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
    sender = sender_of(ctx)
    reply = one_address(reply_to, "reply_to") if reply_to else None
    message_id = _message_id(ctx, sender)

    earlier = _earlier(ctx, message_id, attachments or [])
    if earlier is not None:
        return earlier

    server = server_of(ctx, "smtp")
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

    envelope = [bare_address(a) for a in everyone]

    with ready_to_record(ctx) as record:

        def log_sent(refused: dict[str, str]) -> None:
            record(message_id, [a for a in envelope if a not in refused], refused, subject)

        refused = deliver(server, msg, bare_address(sender), envelope, on_accepted=log_sent)
    accepted = [a for a in envelope if a not in refused]
    return {
        "message_id": message_id,
        "recipients": accepted,
        "refused": refused,
        "subject": subject,
        "attachments": names,
        "already_sent": False,
    }


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
    with imap_session(ctx, mailbox) as client:
        uids = search_uids(client, ["UNSEEN"] if unread_only else ["ALL"])
        chosen = uids[-max(1, limit) :]
        return {
            "mailbox": mailbox,
            "total": len(uids),
            "messages": summaries_of(client, chosen, mailbox),
        }


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
        criteria += search_term("TEXT", text)
    if sender:
        criteria += search_term("FROM", sender)
    if subject:
        criteria += search_term("SUBJECT", subject)
    if since:
        criteria += ["SINCE", imap_date(since)]
    if before:
        criteria += ["BEFORE", imap_date(before)]
    if unread_only:
        criteria.append("UNSEEN")
    with imap_session(ctx, mailbox) as client:
        uids = search_uids(client, criteria or ["ALL"])
        chosen = uids[-max(1, limit) :]
        return {
            "mailbox": mailbox,
            "total": len(uids),
            "messages": summaries_of(client, chosen, mailbox),
        }


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
    with imap_session(ctx, mailbox) as client:
        status, data = client.uid("FETCH", str(uid), "(UID FLAGS RFC822.SIZE BODY.PEEK[])")
        if status != "OK":
            raise ActionError(f"the IMAP server refused to fetch message {uid}: {imap_text(data)}")
        found = [f for f in fetched(data) if f[0] == uid]
    if not found:
        raise ActionError(
            f"no message with UID {uid} in {mailbox}; get UIDs from email.list or email.search"
        )
    _, flags, size, raw = found[0]
    msg = cast(EmailMessage, BytesParser(policy=policy.default).parsebytes(raw))
    summary = summary_of(uid, flags, size or len(raw), raw, mailbox)
    text, from_html = body_text(msg)
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
        "cc": header_list(msg, "Cc"),  # type: ignore[typeddict-item]
        "reply_to": header_list(msg, "Reply-To"),
        "in_reply_to": header(msg, "In-Reply-To") or None,
        "text": text[:limit],
        "truncated": len(text) > limit,
        "html": from_html,
        "attachments": attachments,
    }
