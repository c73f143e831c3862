"""Email addresses: checked and normalised before anything is sent."""

from __future__ import annotations

import re
from email.headerregistry import Address
from email.utils import getaddresses

from openlam.errors import ActionError

_LOCAL = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+$")
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


def _checked(name: str, addr: str, value: str, field: str) -> str:
    """One mailbox checked and normalised ("Name <a@b.c>" or "a@b.c"); else a clear error."""
    local, at, domain = addr.rpartition("@")
    problem = None
    if not at or not local or not domain:
        problem = "it has no @domain"
    elif len(addr) > 254 or len(local) > 64:
        problem = "it is too long"
    elif not _LOCAL.match(local) or local.startswith(".") or local.endswith(".") or ".." in local:
        problem = f"the part before @ ({local!r}) has characters an address cannot have"
    else:
        try:
            ascii_domain = domain.encode("idna").decode("ascii")
        except UnicodeError:
            ascii_domain = ""
        labels = ascii_domain.split(".")
        if ascii_domain != "localhost" and (
            len(labels) < 2
            or not all(_LABEL.match(label) for label in labels)
            or labels[-1].isdigit()
        ):
            problem = f"{domain!r} is not a valid mail domain"
    if problem:
        raise ActionError(f"{field}: {value!r} is not a valid email address: {problem}")
    return str(Address(display_name=name, addr_spec=addr)) if name else addr


def one_address(value: str, field: str) -> str:
    """Exactly one address."""
    found = addresses_in([value], field)
    if len(found) != 1:
        raise ActionError(
            f"{field}: {value!r} is not one email address; give one address like jane@example.com"
        )
    return found[0]


def addresses_in(values: list[str] | None, field: str) -> list[str]:
    """Every address in ``values`` (an item may hold several, comma-separated)."""
    out: list[str] = []
    for value in values or []:
        if any(c in value for c in "\r\n"):
            raise ActionError(f"{field}: {value!r} contains a line break")
        pairs = [(n, a) for n, a in getaddresses([value]) if n or a]
        if not pairs:
            raise ActionError(
                f"{field}: {value!r} is not an email address; give addresses like jane@example.com"
            )
        out.extend(_checked(n, a, value, field) for n, a in pairs)
    return out


def bare_address(address: str) -> str:
    return getaddresses([address])[0][1]
