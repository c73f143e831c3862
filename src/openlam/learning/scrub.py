"""Removing secrets and personal data from text bound for a training set, counting what
was removed. Known secret values (the workspace's secret store and secret-looking
environment variables) are masked first, then what looks like a credential (API keys,
bearer tokens, private keys, passwords in URLs), email addresses, phone numbers and
IBANs."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from typing import Any

from openlam.learning.literals import TYPES

PATTERNS: list[tuple[str, re.Pattern[str], str]] = [
    (
        "private key",
        re.compile(
            r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*"
            r"PRIVATE KEY-----"
        ),
        "<private-key>",
    ),
    (
        "api key",
        re.compile(
            r"\b(?:sk|pk|rk)-[A-Za-z0-9_-]{16,}|\bgh[pousr]_[A-Za-z0-9]{20,}"
            r"|\bxox[abprs]-[A-Za-z0-9-]{10,}|\bAKIA[0-9A-Z]{16}\b"
            r"|\bglpat-[A-Za-z0-9_-]{20,}"
        ),
        "<api-key>",
    ),
    ("bearer token", re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]{12,}"), "Bearer <token>"),
    (
        "password",
        re.compile(
            r"(?i)\b(password|passwd|pwd|secret|token|api_key|apikey)"
            r"(\s*[=:]\s*)(\"[^\"]+\"|'[^']+'|[^\s,;\"'}]+)"
        ),
        r"\1\2<secret>",
    ),
    ("url credentials", re.compile(r"(?<=://)[^/\s:@]+:[^/\s@]+@"), "<credentials>@"),
    (
        "email",
        # the goal literal's address (linear in the text's length), ending at a boundary
        re.compile(TYPES["email"] + r"\b"),
        "<email>",
    ),
    ("iban", re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){3,7}(?: ?[A-Z0-9]{1,4})?\b"), "<iban>"),
    (
        "phone",
        re.compile(
            r"(?<![\w-])\+?\d{1,3}[ .-]?\(?\d{2,4}\)?[ .-]\d{3,4}[ .-]?\d{3,4}"
            r"(?![\w-])"
        ),
        "<phone>",
    ),
]


class Scrubber:
    def __init__(self, secret_values: set[str] | frozenset[str] = frozenset()) -> None:
        from openlam.actions.secrets import Redactor

        self.redactor = Redactor(secret_values, mask="<secret>")
        self.removed: Counter[str] = Counter()

    @classmethod
    def for_settings(cls, settings: Any) -> Scrubber:
        from openlam.actions.secrets import known_secret_values

        return cls(known_secret_values(settings))

    def text(self, text: str) -> str:
        masked = self.redactor.text(text)
        if masked != text:
            self.removed["known secret"] += masked.count("<secret>") - text.count("<secret>")
        for kind, pattern, replacement in PATTERNS:
            masked, n = pattern.subn(replacement, masked)
            self.removed[kind] += n
        return masked

    def value(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {k: self.value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(v) for v in value]
        return value

    def report(self) -> dict[str, int]:
        return {k: v for k, v in sorted(self.removed.items()) if v}
