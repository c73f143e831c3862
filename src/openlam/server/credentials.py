"""API tokens and dashboard users, kept hashed in the project database.

A token is 32 random bytes (URL-safe text with the prefix ``olam_``); only its SHA-256
is stored — a high-entropy secret needs no slow hash, and a lookup by hash is one index
probe per request. A password is a person's choice, so it gets scrypt (a memory-hard
KDF from the standard library) with a random salt. ``openlam tokens`` and
``openlam users`` manage both; the server reads them through :class:`Credentials`.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from openlam.errors import UserError
from openlam.memory.tables import server_secrets, server_tokens, server_users

ROLES = ("viewer", "operator", "approver", "admin")
TOKEN_PREFIX = "olam_"
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$")
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1  # ~16 MiB and ~50 ms per check


@dataclass(frozen=True)
class TokenInfo:
    id: str
    name: str
    role: str
    created_at: float
    last_used_at: float | None
    revoked_at: float | None


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def hash_password(password: str, salt: bytes | None = None) -> str:
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32
    )
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        found = hashlib.scrypt(
            password.encode("utf-8", "surrogatepass"),
            salt=bytes.fromhex(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(digest) // 2,
        )
    except (ValueError, MemoryError):
        return False
    return hmac.compare_digest(found.hex(), digest)


def check_role(role: str) -> str:
    if role not in ROLES:
        raise UserError(f"unknown role {role!r}", f"use one of: {', '.join(ROLES)}")
    return role


def check_name(name: str, what: str) -> str:
    if not NAME.match(name or ""):
        raise UserError(
            f"{what} name {name!r} is not valid",
            "use letters, digits and . _ @ - (at most 128 characters)",
        )
    return name


class Credentials:
    """The tokens and users of one workspace's project database."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    # -- tokens -----------------------------------------------------------------------

    def create_token(self, name: str, role: str) -> tuple[TokenInfo, str]:
        """A new token for ``name`` with ``role``; the token text is returned only here."""
        check_name(name, "token")
        check_role(role)
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        info = TokenInfo(secrets.token_hex(6), name, role, time.time(), None, None)
        with self.engine.begin() as conn:
            conn.execute(
                sa.insert(server_tokens).values(
                    id=info.id,
                    name=name,
                    role=role,
                    token_hash=token_hash(token),
                    created_at=info.created_at,
                )
            )
        return info, token

    def tokens(self, include_revoked: bool = False) -> list[TokenInfo]:
        query = sa.select(server_tokens).order_by(server_tokens.c.created_at)
        if not include_revoked:
            query = query.where(server_tokens.c.revoked_at.is_(None))
        with self.engine.connect() as conn:
            return [
                TokenInfo(r.id, r.name, r.role, r.created_at, r.last_used_at, r.revoked_at)
                for r in conn.execute(query)
            ]

    def revoke_token(self, id_or_name: str) -> list[TokenInfo]:
        """Revoke the token with this id, or every token with this name."""
        live = [t for t in self.tokens() if id_or_name in (t.id, t.name)]
        if not live:
            raise UserError(
                f"no live token with id or name {id_or_name!r}",
                "list them with `openlam tokens list`",
            )
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(server_tokens)
                .where(server_tokens.c.id.in_([t.id for t in live]))
                .values(revoked_at=time.time())
            )
        return live

    def find_token(self, token: str) -> TokenInfo | None:
        """The live token whose text is ``token``; marks it used."""
        if not token.startswith(TOKEN_PREFIX):
            return None
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(server_tokens).where(
                    server_tokens.c.token_hash == token_hash(token),
                    server_tokens.c.revoked_at.is_(None),
                )
            ).first()
        if row is None:
            return None
        return TokenInfo(row.id, row.name, row.role, row.created_at, row.last_used_at, None)

    def touch(self, token_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(server_tokens)
                .where(server_tokens.c.id == token_id)
                .values(last_used_at=time.time())
            )

    def live_token(self, token_id: str) -> TokenInfo | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(server_tokens).where(
                    server_tokens.c.id == token_id, server_tokens.c.revoked_at.is_(None)
                )
            ).first()
        return (
            None
            if row is None
            else TokenInfo(row.id, row.name, row.role, row.created_at, row.last_used_at, None)
        )

    # -- users ------------------------------------------------------------------------

    def add_user(self, name: str, role: str, password: str, *, replace: bool = False) -> None:
        check_name(name, "user")
        check_role(role)
        if len(password) < 8:
            raise UserError("the password is shorter than 8 characters", "choose a longer one")
        row = {
            "name": name,
            "role": role,
            "password_hash": hash_password(password),
            "created_at": time.time(),
        }
        with self.engine.begin() as conn:
            exists = conn.execute(
                sa.select(server_users.c.name).where(server_users.c.name == name)
            ).first()
            if exists and not replace:
                raise UserError(
                    f"user {name} exists already", "give --replace to set a new password and role"
                )
            if exists:
                conn.execute(
                    sa.update(server_users).where(server_users.c.name == name).values(**row)
                )
            else:
                conn.execute(sa.insert(server_users).values(**row))

    def users(self) -> list[tuple[str, str]]:
        with self.engine.connect() as conn:
            return [
                (r.name, r.role)
                for r in conn.execute(
                    sa.select(server_users.c.name, server_users.c.role).order_by(
                        server_users.c.name
                    )
                )
            ]

    def remove_user(self, name: str) -> None:
        with self.engine.begin() as conn:
            gone = conn.execute(sa.delete(server_users).where(server_users.c.name == name))
        if gone.rowcount != 1:
            raise UserError(f"no user {name!r}", "list them with `openlam users list`")

    def user_role(self, name: str) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(
                sa.select(server_users.c.role).where(server_users.c.name == name)
            ).scalar()

    def check_user(self, name: str, password: str) -> str | None:
        """The role of ``name`` if ``password`` is theirs."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(server_users).where(server_users.c.name == name)).first()
        if row is None:
            hash_password(password)  # the same time as a wrong password: names stay secret
            return None
        return row.role if check_password(password, row.password_hash) else None

    # -- configured? and the session key ---------------------------------------------

    def any_configured(self) -> bool:
        """Whether at least one live token or user exists (the server may then listen on
        a non-loopback address)."""
        with self.engine.connect() as conn:
            token = conn.execute(
                sa.select(server_tokens.c.id).where(server_tokens.c.revoked_at.is_(None)).limit(1)
            ).first()
            user = conn.execute(sa.select(server_users.c.name).limit(1)).first()
        return token is not None or user is not None

    def session_key(self) -> bytes:
        """The key that signs session cookies: made once, shared by every server of the
        workspace (they share the database), so a cookie works on each of them."""
        with self.engine.begin() as conn:
            value = conn.execute(
                sa.select(server_secrets.c.value).where(server_secrets.c.name == "session")
            ).scalar()
            if value is None:
                value = secrets.token_hex(32)
                try:
                    with conn.begin_nested():
                        conn.execute(sa.insert(server_secrets).values(name="session", value=value))
                except IntegrityError:  # another server made it first
                    value = conn.execute(
                        sa.select(server_secrets.c.value).where(server_secrets.c.name == "session")
                    ).scalar()
        if not value:
            raise RuntimeError("the session key could not be read or made")
        return bytes.fromhex(value)
