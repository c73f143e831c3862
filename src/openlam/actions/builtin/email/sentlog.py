"""The sent log: every message sent, in the project database, by Message-ID.

It is how a repeated or recovered step finds that its message already went out.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Column, DateTime, MetaData, String, Table, Text, insert, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from openlam.actions.plugin_config import settings_of
from openlam.actions.spec import ActionContext
from openlam.errors import ActionError
from openlam.memory.engines import engine_for

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


def find_logged(ctx: ActionContext, message_id: str) -> Any:
    url = settings_of(ctx).app_database_url
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


_INSERT_SENT = insert(email_sent)


@contextmanager
def ready_to_record(ctx: ActionContext) -> Iterator[Callable[..., None]]:
    """A connection to the sent log, opened (and checked) before the message goes out;
    yields ``record(message_id, recipients, refused, subject)``.

    A crash between the SMTP server accepting a message and its record committing sends
    it again on recovery (when no IMAP ``sent_mailbox`` can be searched). Opening the
    connection first leaves that window one INSERT and COMMIT wide."""
    url = settings_of(ctx).app_database_url
    try:
        conn = engine_for(url, _meta).connect()
    except SQLAlchemyError as exc:
        raise ActionError(
            f"cannot open the sent log: the project database failed "
            f"({exc.__class__.__name__}); nothing was sent",
            transient=True,
        ) from None

    def record(message_id: str, recipients: list[str], refused: dict[str, str], subject: str):
        row = {
            "message_id": message_id,
            "idempotency_key": ctx.idempotency_key,
            "run_id": ctx.run_id or None,
            "recipients": json.dumps(recipients),
            "refused": json.dumps(refused),
            "subject": subject,
            "sent_at": datetime.now(UTC),
        }
        try:
            with conn.begin():
                conn.execute(_INSERT_SENT, row)
        except IntegrityError:
            pass  # recorded by an earlier attempt
        except SQLAlchemyError as exc:
            raise ActionError(
                f"message {message_id} WAS sent to {', '.join(recipients)}, but "
                f"recording it in the project database failed ({exc}); do not "
                "send it again"
            ) from None

    try:
        yield record
    finally:
        conn.close()
