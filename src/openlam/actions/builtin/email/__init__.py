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
the SMTP server's acceptance and the sent log's commit (one INSERT and COMMIT on a
connection opened before sending: well under a millisecond locally) can repeat a send
when no ``sent_mailbox`` is configured.

Verification: the server must have accepted every recipient, and the message must be in
the sent log — and, with ``sent_mailbox``, in that mailbox on the IMAP server.

The package: :mod:`.config` (the ``[email]`` table and its servers), :mod:`.addresses`,
:mod:`.smtp` and :mod:`.imap` (the transports), :mod:`.sentlog` (storage) and
:mod:`.actions`. The plugin is this package: its actions and ``CONFIG`` are here.
"""

from openlam.actions.builtin.email.actions import (
    list_messages,
    message_id_for,
    read,
    search_messages,
    send,
)
from openlam.actions.builtin.email.config import CONFIG

__all__ = ["CONFIG", "list_messages", "message_id_for", "read", "search_messages", "send"]
