"""Sending over SMTP: one message handed to the server, failures named with their fix."""

from __future__ import annotations

import smtplib
import socket
from collections.abc import Callable
from email.message import EmailMessage

from openlam.actions.builtin.email.config import Server, connect_error
from openlam.errors import ActionError


def _smtp_reply(code: int, text: bytes | str) -> str:
    message = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    return f"{code} {message}".strip()


def deliver(
    server: Server,
    msg: EmailMessage,
    sender: str,
    recipients: list[str],
    on_accepted: Callable[[dict[str, str]], None] | None = None,
) -> dict[str, str]:
    """Hand the message to the SMTP server; returns the recipients it refused.

    ``on_accepted(refused)`` runs the moment the server has accepted the message, before
    the goodbye (QUIT) round trip: the sent log's record then follows the acceptance as
    closely as it can, which narrows the window in which a crash sends it again."""
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
        reasons = {addr: _smtp_reply(code, text) for addr, (code, text) in refused.items()}
        if on_accepted is not None:
            on_accepted(reasons)
        return reasons
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
        raise connect_error(server, exc) from None
    finally:
        if client is not None:
            try:
                client.quit()
            except (OSError, smtplib.SMTPException):
                client.close()
