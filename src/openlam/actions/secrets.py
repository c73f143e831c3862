"""Secrets: credentials for actions, from the environment or an encrypted store, and
the redaction that keeps their values out of everything OpenLAM writes down.

* The store is ``<workspace>/.openlam/secrets.enc``: one Fernet token (AES-128-CBC +
  HMAC-SHA256, from ``cryptography``) holding a JSON object ``{name: value}``, written
  atomically with mode 0600.
* The key is ``OPENLAM_SECRET_KEY`` when set — a Fernet key, or any passphrase, which is
  stretched with scrypt and a per-store salt — otherwise a key file generated on first
  use in the user's configuration directory (``$XDG_CONFIG_HOME/openlam/secret.key``,
  default ``~/.config/openlam/secret.key``, or ``OPENLAM_SECRET_KEY_FILE``), mode 0600.
  The key lives outside the workspace on purpose: a workspace is copied, archived,
  synced and mounted into containers, and a key kept beside its ciphertext protects
  nothing.
* :func:`secret_lookup` answers ``ActionContext.secret``: environment first, then the
  store.
* :class:`Redactor` replaces every known secret value — and its URL-encoded, JSON-escaped,
  hex and base64 forms, including base64 blobs that merely contain it, as in HTTP basic
  auth — with ``***`` in strings and JSON-like values. :class:`RedactingFilter` does the
  same for log records.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
import os
import re
import stat
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

from openlam.errors import UserError

KEY_ENV = "OPENLAM_SECRET_KEY"
KEY_FILE_ENV = "OPENLAM_SECRET_KEY_FILE"
STORE_FILE = "secrets.enc"
STORE_FORMAT = "openlam-secrets"
STORE_VERSION = 1
MASK = "***"
MIN_REDACT_LENGTH = 4
"""Values shorter than this are not redacted: they cannot be told apart from ordinary text."""

NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
SECRET_LIKE_ENV = re.compile(
    r"(^|_)(API_?KEY|KEY|TOKEN|SECRET|PASSWORD|PASSWD|PASS|CREDENTIALS?)($|_)", re.IGNORECASE
)
NOT_SECRET_ENV = re.compile(r"_(FILE|PATH|DIR|SOCK|URL)$", re.IGNORECASE)
MIN_GUESSED_LENGTH = 8
"""Environment variables whose names look like credentials (and are not file names or
addresses) have their values redacted too, when at least this long."""

_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**15, 8, 1
log = logging.getLogger(__name__)


def check_name(name: str) -> str:
    if not NAME_PATTERN.match(name):
        raise UserError(
            f"{name!r} is not a valid secret name",
            "use letters, digits and underscores, not starting with a digit, "
            "e.g. SMTP_PASSWORD (the same name works as an environment variable)",
        )
    return name


# ---------------------------------------------------------------------------- the key


def key_file_path() -> Path:
    """Where the generated key lives (``OPENLAM_SECRET_KEY_FILE`` overrides)."""
    explicit = os.environ.get(KEY_FILE_ENV)
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base).expanduser() / "openlam" / "secret.key"


class _Key:
    """The material that opens the store and where it came from (for error messages)."""

    def __init__(self, material: bytes, source: str) -> None:
        self.material = material
        self.source = source

    @property
    def is_fernet_key(self) -> bool:
        try:
            return len(base64.urlsafe_b64decode(self.material)) == 32
        except (binascii.Error, ValueError):
            return False

    def fernet(self, salt: bytes | None) -> Any:
        from cryptography.fernet import Fernet

        if self.is_fernet_key:
            return Fernet(self.material)
        if salt is None:
            raise UserError("internal: a passphrase needs a salt")
        from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

        derived = Scrypt(salt=salt, length=32, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P)
        return Fernet(base64.urlsafe_b64encode(derived.derive(self.material)))


def _load_key(*, create: bool) -> _Key | None:
    env = os.environ.get(KEY_ENV)
    if env:
        return _Key(env.strip().encode("utf-8"), f"${KEY_ENV}")
    path = key_file_path()
    if path.exists():
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            raise UserError(
                f"the secret key file {path} is readable by others (mode {mode:o})",
                f"chmod 600 {path}",
            )
        return _Key(path.read_bytes().strip(), str(path))
    if not create:
        return None
    from cryptography.fernet import Fernet

    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process generated it a moment ago
        return _Key(path.read_bytes().strip(), str(path))
    with os.fdopen(fd, "wb") as handle:
        handle.write(Fernet.generate_key() + b"\n")
    log.info("generated a secret key in %s", path)
    return _Key(path.read_bytes().strip(), str(path))


def _key_fix(key: _Key) -> str:
    if key.source == f"${KEY_ENV}":
        return (
            f"set {KEY_ENV} to the key the secrets were stored with (or unset it to use "
            f"the key file {key_file_path()})"
        )
    return f"restore {key.source}, or set {KEY_ENV} to the key the secrets were stored with"


# -------------------------------------------------------------------------- the store


class SecretStore:
    """The workspace's encrypted secrets. Every call reads the file afresh."""

    def __init__(self, state_dir: Path) -> None:
        self.path = Path(state_dir) / STORE_FILE

    @classmethod
    def for_settings(cls, settings: Any) -> SecretStore:
        return cls(settings.state_dir)

    def exists(self) -> bool:
        return self.path.exists()

    def read(self) -> dict[str, str]:
        """All secrets; ``{}`` when there is no store. Raises ``UserError`` on a wrong key."""
        if not self.path.exists():
            return {}
        key = _load_key(create=False)
        if key is None:
            raise UserError(
                f"{self.path} holds encrypted secrets but no key is available "
                f"(${KEY_ENV} is not set and {key_file_path()} does not exist)",
                f"set {KEY_ENV} to the key the secrets were stored with, or remove "
                f"{self.path} and store the secrets again",
            )
        return self._decrypt(key)[0]

    def names(self) -> list[str]:
        return sorted(self.read())

    def get(self, name: str) -> str | None:
        return self.read().get(name)

    def set(self, name: str, value: str) -> None:
        check_name(name)
        if not value:
            raise UserError(f"the value of {name} is empty", "give a non-empty value")
        with self._locked():
            key = _load_key(create=True)
            assert key is not None
            secrets, salt = self._decrypt(key) if self.path.exists() else ({}, None)
            secrets[name] = value
            self._write(key, secrets, salt)

    def remove(self, name: str) -> bool:
        """Remove a secret; False when there was none of that name."""
        with self._locked():
            if not self.path.exists():
                return False
            secrets = self.read()  # raises a clear error when there is no key
            if name not in secrets:
                return False
            key = _load_key(create=False)
            assert key is not None
            secrets, salt = self._decrypt(key)
            del secrets[name]
            self._write(key, secrets, salt)
            return True

    # -- file format: {"format", "version", "kdf": "fernet-key"|"scrypt", "salt", "token"}

    def _decrypt(self, key: _Key) -> tuple[dict[str, str], bytes | None]:
        from cryptography.fernet import InvalidToken

        try:
            envelope = json.loads(self.path.read_text(encoding="utf-8"))
            if envelope.get("format") != STORE_FORMAT:
                raise ValueError("not an OpenLAM secrets file")
            salt = base64.b64decode(envelope["salt"]) if envelope.get("salt") else None
            kdf = envelope.get("kdf")
            token = envelope["token"].encode("ascii")
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise UserError(
                f"{self.path} is damaged: {exc}",
                "restore it from a backup, or remove it and set the secrets "
                "again with `openlam secrets set`",
            ) from None
        wanted = "fernet-key" if key.is_fernet_key else "scrypt"
        if kdf != wanted:
            found = "a Fernet key" if kdf == "fernet-key" else "a passphrase"
            raise UserError(
                f"cannot decrypt {self.path}: it was encrypted with {found}, but the key "
                f"from {key.source} is {'a Fernet key' if key.is_fernet_key else 'a passphrase'}",
                _key_fix(key),
            )
        try:
            plain = key.fernet(salt).decrypt(token)
        except InvalidToken:
            raise UserError(
                f"cannot decrypt {self.path} with the key from {key.source}: it is not the key "
                "the secrets were stored with",
                f"{_key_fix(key)}, or remove {self.path} and store the secrets again",
            ) from None
        data = json.loads(plain)
        return {str(k): str(v) for k, v in data.items()}, salt

    def _write(self, key: _Key, secrets: Mapping[str, str], salt: bytes | None) -> None:
        if not key.is_fernet_key and salt is None:
            salt = os.urandom(16)
        token = key.fernet(salt).encrypt(json.dumps(dict(secrets), sort_keys=True).encode())
        envelope = {
            "format": STORE_FORMAT,
            "version": STORE_VERSION,
            "kdf": "fernet-key" if key.is_fernet_key else "scrypt",
            "salt": base64.b64encode(salt).decode() if salt else None,
            "token": token.decode("ascii"),
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(envelope, handle)
            handle.write("\n")
        os.chmod(tmp, 0o600)  # O_CREAT's mode is filtered by the umask, and tmp may be old
        tmp.replace(self.path)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Serialise writers (two `secrets set` at once must not lose one of them)."""
        from filelock import FileLock

        self.path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(self.path.with_name(f".{self.path.name}.lock"), mode=0o600):
            yield


# ------------------------------------------------------------------------- the lookup


class SecretLookup:
    """``ActionContext.secret``: the environment first, then the workspace's store.

    The store is decrypted on first need and re-read when the file changes. Every value
    handed out is also given to ``redactor`` (when one is attached), so whatever an
    action received is masked in what the run records.
    """

    def __init__(
        self,
        store: SecretStore,
        redactor: Redactor | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.store = store
        self.redactor = redactor
        self._environ = environ
        self._cache: dict[str, str] | None = None
        self._stamp: tuple[int, int] | None = None
        self._lock = threading.Lock()

    def __call__(self, name: str) -> str | None:
        environ = os.environ if self._environ is None else self._environ
        value = environ.get(name) or self._stored().get(name)
        if value and self.redactor is not None:
            self.redactor.add(value)
        return value or None

    def _stored(self) -> dict[str, str]:
        with self._lock:
            try:
                st = self.store.path.stat()
            except FileNotFoundError:
                self._cache, self._stamp = {}, None
                return {}
            stamp = (st.st_mtime_ns, st.st_size)
            if self._cache is None or stamp != self._stamp:
                self._cache, self._stamp = self.store.read(), stamp
            return self._cache


def secret_lookup(settings: Any, redactor: Redactor | None = None) -> SecretLookup:
    """The function to pass as ``ActionContext(secret=...)`` for a workspace."""
    return SecretLookup(SecretStore.for_settings(settings), redactor)


def known_secret_values(settings: Any, names: Iterable[str] = ()) -> set[str]:
    """Every value that must never be written down: the whole store, the environment
    variables in ``names`` (e.g. every action's declared secrets) and every environment
    variable whose name looks like a credential (``*_KEY``, ``*_TOKEN``, ``*_PASSWORD``…).

    An unreadable store (wrong or missing key) contributes nothing — nobody can read
    its values then either — and is logged as a warning.
    """
    values: set[str] = set()
    try:
        values.update(SecretStore.for_settings(settings).read().values())
    except UserError as exc:
        log.warning("secrets store not readable, its values are not redacted: %s", exc)
    for name in names:
        if os.environ.get(name):
            values.add(os.environ[name])
    for name, value in os.environ.items():
        if (
            len(value) >= MIN_GUESSED_LENGTH
            and SECRET_LIKE_ENV.search(name)
            and not NOT_SECRET_ENV.search(name)
        ):
            values.add(value)
    if getattr(settings, "openai_api_key", None):
        values.add(settings.openai_api_key)
    return values


# ---------------------------------------------------------------------- redaction


def _encodings(value: str) -> set[str]:
    """The forms a secret takes when it travels: raw, URL-encoded, JSON-escaped, hex,
    base64 (standard and URL-safe, with and without padding)."""
    raw = value.encode("utf-8")
    forms = {
        value,
        quote(value, safe=""),
        quote_plus(value),
        quote(value),
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
        raw.hex(),
        raw.hex().upper(),
    }
    for encoded in (base64.b64encode(raw), base64.urlsafe_b64encode(raw)):
        text = encoded.decode("ascii")
        forms.update({text, text.rstrip("=")})
    return {f for f in forms if len(f) >= MIN_REDACT_LENGTH}


_MAX_PASSES = 8
_BASE64_TOKEN = re.compile(r"[A-Za-z0-9+/_-]{8,}={0,2}")


class Redactor:
    """Masks known secret values in strings and JSON-like values. Thread-safe; values
    can be added at any time (e.g. as actions receive them)."""

    def __init__(self, values: Iterable[str] = (), mask: str = MASK) -> None:
        self.mask = mask
        self._values: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self._lock = threading.Lock()
        for value in values:
            self.add(value)

    @classmethod
    def for_settings(cls, settings: Any, names: Iterable[str] = ()) -> Redactor:
        return cls(known_secret_values(settings, names))

    @property
    def values(self) -> frozenset[str]:
        return frozenset(self._values)

    def add(self, value: str) -> None:
        value = str(value)
        if len(value) < MIN_REDACT_LENGTH or value in self._values:
            return
        with self._lock:
            self._values.add(value)
            forms = set().union(*(_encodings(v) for v in self._values))
            # Longest first, so a secret's longer encoding wins over a shorter one inside it.
            alternation = "|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True))
            self._pattern = re.compile(alternation)

    def __bool__(self) -> bool:
        return bool(self._values)

    def text(self, text: str) -> str:
        pattern = self._pattern
        if pattern is None or not text:
            return text
        # Until nothing changes: masking can join the pieces of overlapping occurrences.
        # (Bounded, in case a custom mask itself contains a secret.)
        for _ in range(_MAX_PASSES):
            masked = pattern.sub(self.mask, _BASE64_TOKEN.sub(self._base64_blob, text))
            if masked == text:
                break
            text = masked
        return text

    def _base64_blob(self, match: re.Match[str]) -> str:
        """A base64 token whose decoding contains a secret (``user:password`` in basic
        auth, a secret inside a JSON blob…) is masked whole."""
        token = match.group(0)
        padded = token + "=" * (-len(token) % 4)
        for decode in (base64.b64decode, base64.urlsafe_b64decode):
            try:
                plain = decode(padded).decode("utf-8", errors="ignore")
            except (binascii.Error, ValueError):
                continue
            if any(v in plain for v in self._values):
                return self.mask
        return token

    def __call__(self, value: Any) -> Any:
        return self.value(value)

    def value(self, value: Any) -> Any:
        """A copy of a JSON-like value (dicts, lists, tuples, strings, numbers, bytes) with
        every secret masked, in keys as well as values."""
        if not self._values:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {self.value(k): self.value(v) for k, v in value.items()}
        if isinstance(value, list | tuple | set | frozenset):
            items = [self.value(v) for v in value]
            if isinstance(value, list):
                return items
            if hasattr(value, "_fields"):  # a namedtuple
                return type(value)(*items)
            return type(value)(items)
        if isinstance(value, bytes | bytearray):
            text = bytes(value).decode("utf-8", errors="surrogateescape")
            masked = self.text(text)
            return value if masked == text else masked.encode("utf-8", errors="surrogateescape")
        if isinstance(value, int | float) and not isinstance(value, bool):
            text = str(value)
            return self.mask if self.text(text) != text else value
        return value


def redact(value: Any, secret_values: Iterable[str]) -> Any:
    """One-off form of :class:`Redactor`: ``value`` with every secret value masked."""
    return Redactor(secret_values).value(value)


class RedactingFilter(logging.Filter):
    """A logging filter that masks secrets in the rendered message, the traceback and
    the stack of each record. Attach it to *handlers* (a logger's filters do not see
    records propagated from child loggers); :func:`redact_logging` does that."""

    def __init__(self, redactor: Redactor | Callable[[], Redactor]) -> None:
        super().__init__()
        self._redactor = redactor

    @property
    def redactor(self) -> Redactor:
        r = self._redactor
        return r if isinstance(r, Redactor) else r()

    def filter(self, record: logging.LogRecord) -> bool:
        redactor = self.redactor
        if not redactor:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: the handler reports it as logging does
            return True
        masked = redactor.text(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redactor.text(record.exc_text)
        if record.stack_info:
            record.stack_info = redactor.text(record.stack_info)
        return True


def redact_logging(
    redactor: Redactor, handlers: Iterable[logging.Handler] | None = None
) -> RedactingFilter:
    """Attach one :class:`RedactingFilter` to ``handlers`` (default: every handler of the
    root logger). Returns the filter, e.g. to remove it later or add it to new handlers."""
    filt = RedactingFilter(redactor)
    for handler in logging.getLogger().handlers if handlers is None else handlers:
        if not any(
            isinstance(f, RedactingFilter) and f.redactor is redactor for f in handler.filters
        ):
            handler.addFilter(filt)
    return filt
