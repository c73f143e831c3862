"""The ``[email]`` table of openlam.toml, and the SMTP and IMAP servers it describes."""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BeforeValidator, Field, PositiveFloat, PositiveInt, StrictBool

from openlam.actions.builtin.email.addresses import one_address
from openlam.actions.plugin_config import PluginConfig
from openlam.actions.spec import ActionContext
from openlam.errors import ActionError

DEFAULT_TIMEOUT = 20.0
DEFAULT_PORTS = {
    "smtp": {"ssl": 465, "starttls": 587, "none": 25},
    "imap": {"ssl": 993, "starttls": 143, "none": 143},
}
DEFAULT_SECURITY = {"smtp": "starttls", "imap": "ssl"}
PASSWORD_SECRET = {"smtp": "SMTP_PASSWORD", "imap": "IMAP_PASSWORD"}
LOOPBACK = ("127.0.0.1", "::1", "localhost")


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


Security = Annotated[Literal["ssl", "starttls", "none"], BeforeValidator(_lower)]


class ServerConfig(PluginConfig):
    """``[email.smtp]`` or ``[email.imap]``; the password is a secret, never here."""

    host: str = ""
    port: PositiveInt | None = None  # default from security (DEFAULT_PORTS)
    security: Security | None = None  # default DEFAULT_SECURITY
    username: str = ""
    timeout: PositiveFloat = DEFAULT_TIMEOUT
    ca_file: str = ""
    verify_tls: StrictBool = True
    allow_insecure_auth: StrictBool = False


class SmtpConfig(ServerConfig):
    sender: str = Field(default="", alias="from")  # an older place for [email] from


class ImapConfig(ServerConfig):
    sent_mailbox: str = ""  # where the server files what is sent, if it does


class EmailConfig(PluginConfig):
    """The ``[email]`` table of openlam.toml."""

    section: ClassVar[str] = "email"
    hint: ClassVar[str] = "see docs/actions/email.md"

    sender: str = Field(default="", alias="from")
    smtp: SmtpConfig = SmtpConfig()
    imap: ImapConfig = ImapConfig()


CONFIG = EmailConfig


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


def server_of(ctx: ActionContext, kind: str) -> Server:
    email = EmailConfig.of(ctx)
    conf = email.smtp if kind == "smtp" else email.imap
    key = f"[email.{kind}]"
    if not conf.host:
        raise ActionError(
            f"no {kind.upper()} server is configured; add {key} with host (and "
            f"port, security, username) to openlam.toml and set the secret "
            f"{PASSWORD_SECRET[kind]}"
        )
    security = conf.security or DEFAULT_SECURITY[kind]
    port = conf.port or DEFAULT_PORTS[kind][security]
    username = conf.username or None
    password = ctx.secret(PASSWORD_SECRET[kind]) if username else None
    if username and not password:
        raise ActionError(
            f"{key} username is {username!r} but the secret "
            f"{PASSWORD_SECRET[kind]} is not set; set it (environment or "
            "`openlam secrets set`) or remove the username"
        )
    ca_file = conf.ca_file or None
    if ca_file and not Path(ca_file).expanduser().is_file():
        raise ActionError(f"{key} ca_file = {ca_file!r} does not exist")
    server = Server(
        kind,
        conf.host,
        port,
        security,
        username,
        password,
        conf.timeout,
        str(Path(ca_file).expanduser()) if ca_file else None,
        conf.verify_tls,
        conf.allow_insecure_auth,
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


def connect_error(server: Server, exc: BaseException) -> ActionError:
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


def sender_of(ctx: ActionContext) -> str:
    config = EmailConfig.of(ctx)
    sender = config.sender or config.smtp.sender or config.smtp.username
    if not sender:
        raise ActionError(
            'no sender address: set [email] from = "Name <you@example.com>" in openlam.toml'
        )
    return one_address(sender, "[email] from")


def sent_mailbox_of(ctx: ActionContext) -> str | None:
    return EmailConfig.of(ctx).imap.sent_mailbox or None
