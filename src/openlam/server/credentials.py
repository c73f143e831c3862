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

from openlam.errors import UserError, not_utf8
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


MIN_GIVEN_TOKEN = len(TOKEN_PREFIX) + 32
MAKE_ONE = (
    "make one with: python3 -c \"import secrets; print('olam_' + secrets.token_urlsafe(32))\""
)


def check_given_token(token: str, name: str) -> str:
    """A token value provided from outside (the environment, a file) must look like the
    ones OpenLAM makes: the ``olam_`` prefix and enough random text after it."""
    if not token.startswith(TOKEN_PREFIX) or len(token) < MIN_GIVEN_TOKEN:
        raise UserError(
            f"the token given for {name} is not usable: it must start with {TOKEN_PREFIX!r} "
            f"and be at least {MIN_GIVEN_TOKEN} characters long",
            MAKE_ONE,
        )
    if any(c.isspace() for c in token) or not token.isprintable():
        raise UserError(f"the token given for {name} contains spaces or control characters")
    return token


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

    def ensure_token(self, name: str, role: str, token: str) -> str:
        """Provision the token ``token`` (given, not made) for ``name`` with ``role``,
        idempotently: stored hashed like any other, once. Other live tokens of that name
        are revoked (the given value replaced theirs); a token revoked since it was
        provisioned stays revoked. Returns what was done, for the log."""
        check_name(name, "token")
        check_role(role)
        check_given_token(token, name)
        try:
            return self._ensure_token(name, role, token_hash(token))
        except IntegrityError:  # another server provisioned it at the same moment
            return self._ensure_token(name, role, token_hash(token))

    def _ensure_token(self, name: str, role: str, digest: str) -> str:
        with self.engine.begin() as conn:
            row = conn.execute(
                sa.select(server_tokens).where(server_tokens.c.token_hash == digest)
            ).first()
            if row is not None:
                if row.revoked_at is not None:
                    return f"token {name} was revoked; it stays revoked (give a new value)"
                if row.name != name or row.role != role:
                    conn.execute(
                        sa.update(server_tokens)
                        .where(server_tokens.c.id == row.id)
                        .values(name=name, role=role)
                    )
                    return f"token {name} ({role}) updated"
                return f"token {name} ({role}) already provisioned"
            replaced = conn.execute(
                sa.update(server_tokens)
                .where(server_tokens.c.name == name, server_tokens.c.revoked_at.is_(None))
                .values(revoked_at=time.time())
            ).rowcount
            conn.execute(
                sa.insert(server_tokens).values(
                    id=secrets.token_hex(6),
                    name=name,
                    role=role,
                    token_hash=digest,
                    created_at=time.time(),
                )
            )
        return f"token {name} ({role}) provisioned" + (
            f", replacing {replaced} older one(s)" if replaced else ""
        )

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


BOOTSTRAP_TOKEN_ENV = "OPENLAM_BOOTSTRAP_ADMIN_TOKEN"
BOOTSTRAP_TOKEN_NAME = "bootstrap-admin"
TOKENS_FILE_ENV = "OPENLAM_TOKENS_FILE"


def read_tokens_file(path: str) -> list[tuple[str, str, str]]:
    """``NAME ROLE TOKEN`` per line (``#`` comments and blank lines skipped)."""
    from pathlib import Path

    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise not_utf8(path, exc) from None
    except OSError as exc:
        raise UserError(
            f"cannot read the tokens file {path} ({TOKENS_FILE_ENV}): {exc.strerror or exc}",
            "mount it into the container (a compose secret, say), or unset " + TOKENS_FILE_ENV,
        ) from None
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 3:
            raise UserError(
                f"{path}, line {number}: expected NAME ROLE TOKEN, found {len(parts)} field(s)",
                f"e.g. ci operator olam_…; roles: {', '.join(ROLES)}",
            )
        found.append((parts[0], parts[1], parts[2]))
    return found


def provision_from_env(credentials: Credentials, environ: dict[str, str]) -> list[str]:
    """The tokens the environment provides, made to exist (hashed, idempotently) before
    the server starts — so a container given a secret has a working API without anyone
    running ``openlam tokens create`` inside it:

    - ``OPENLAM_BOOTSTRAP_ADMIN_TOKEN``: an admin token named ``bootstrap-admin``;
    - ``OPENLAM_TOKENS_FILE``: a file of ``NAME ROLE TOKEN`` lines (a Docker secret).

    Everything is checked before anything is written. Returns one line per token."""
    wanted: list[tuple[str, str, str]] = []
    value = (environ.get(BOOTSTRAP_TOKEN_ENV) or "").strip()
    if value:
        wanted.append((BOOTSTRAP_TOKEN_NAME, "admin", value))
    path = (environ.get(TOKENS_FILE_ENV) or "").strip()
    if path:
        wanted.extend(read_tokens_file(path))
    for name, role, token in wanted:
        check_name(name, "token")
        check_role(role)
        check_given_token(token, name)
    return [credentials.ensure_token(name, role, token) for name, role, token in wanted]
