"""Risk tiers of imported actions (MCP tools, OpenAPI operations), with where each came from.

An imported action's tier is only as good as whoever wrote its description. So:

* the user's word wins: ``--risk NAME=TIER`` for one action;
* for a source the user vouches for (``--trust``, ``openlam actions trust``), what the
  source says is believed: ``x-openlam-risk`` or a ``x-…tool-type`` hint on an OpenAPI
  operation, the HTTP method's safety, an MCP tool's ``readOnlyHint``/``destructiveHint``;
* for any other source, everything that can carry data out defaults to ``external``
  (every MCP tool, every operation with a request body), DELETE to ``destructive``; only
  GET, HEAD and OPTIONS are ``read``. Its hints (``x-openlam-risk``, a tool-type of
  ``write`` on a GET) may raise a tier, never lower it.

Each tier comes with its reason ("external: default for an unvouched POST"), shown by
``openlam actions list|show``. An action whose arguments include a URL sends data to a
host the plan chooses: it is marked as an *egress* (tainted arguments need approval).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from openlam.actions.spec import ActionSpec, Risk

ORDER = tuple(Risk)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
METHOD_TIERS = {
    "GET": Risk.read,
    "HEAD": Risk.read,
    "OPTIONS": Risk.read,
    "TRACE": Risk.read,
    "POST": Risk.write,
    "PUT": Risk.write,
    "PATCH": Risk.write,
    "DELETE": Risk.destructive,
}
TOOL_TYPE_KEY = re.compile(r"^x-([a-z0-9]+-)*tool-?type$", re.IGNORECASE)
"""``x-tool-type``, ``x-tau2-tool-type``, ``x-openlam-tooltype``…: the convention of tool
servers that mark each tool read or write (τ²-bench's ``ToolType``: read, write, think,
generic)."""
TOOL_TYPES = {"read": Risk.read, "think": Risk.read, "write": Risk.write}
URL_NAME = re.compile(r"(^|_)(url|uri|href|link|endpoint|webhook|callback)s?(_|$)", re.IGNORECASE)
URL_FORMATS = frozenset({"uri", "url", "iri", "uri-reference", "iri-reference"})
NO_REASON = "declared by its plugin"


@dataclass(frozen=True)
class Tier:
    risk: Risk
    reason: str

    def __str__(self) -> str:
        return f"{self.risk.value}: {self.reason}"


def higher(a: Risk, b: Risk) -> Risk:
    return a if ORDER.index(a) >= ORDER.index(b) else b


def chosen_by_user(tier: str) -> Tier:
    return Tier(Risk(tier), "set by you (--risk)")


def operation_tier(
    method: str,
    *,
    declared: str | None = None,
    tool_type: tuple[str, str] | None = None,
    trusted: bool,
) -> Tier:
    """An OpenAPI operation's tier. ``declared``: its ``x-openlam-risk``; ``tool_type``:
    (extension key, value) of a tool-type hint."""
    method = method.upper()
    stated = Risk(declared) if declared in Risk.__members__ else None
    if trusted:
        if stated is not None:
            return Tier(stated, "x-openlam-risk in the spec (source vouched for by you)")
        if tool_type and tool_type[1].lower() in TOOL_TYPES:
            key, value = tool_type
            return Tier(
                TOOL_TYPES[value.lower()], f"{key}: {value} in the spec (source vouched for by you)"
            )
        tier = METHOD_TIERS.get(method, Risk.external)
        return Tier(tier, f"a {method}, source vouched for by you")
    if method in SAFE_METHODS:
        base = Tier(Risk.read, f"default for an unvouched {method} (a safe method)")
    elif method == "DELETE":
        base = Tier(Risk.destructive, "default for an unvouched DELETE")
    else:
        base = Tier(Risk.external, f"default for an unvouched {method}")
    if stated is not None and higher(stated, base.risk) is not base.risk:
        return Tier(stated, "x-openlam-risk in the spec (raises the unvouched default)")
    hinted = TOOL_TYPES.get(tool_type[1].lower()) if tool_type else None
    if tool_type and hinted is not None and higher(hinted, base.risk) is not base.risk:
        return Tier(
            hinted, f"{tool_type[0]}: {tool_type[1]} in the spec (raises the unvouched default)"
        )
    return base


def tool_tier(annotations: Mapping[str, Any] | None, *, trusted: bool) -> Tier:
    """An MCP tool's tier from its annotations (snake_case or camelCase keys)."""
    hints = annotations or {}
    read_only = bool(hints.get("read_only_hint") or hints.get("readOnlyHint"))
    destructive = bool(hints.get("destructive_hint") or hints.get("destructiveHint"))
    if trusted:
        if read_only:
            return Tier(Risk.read, "readOnlyHint (server vouched for by you)")
        if destructive:
            return Tier(Risk.destructive, "destructiveHint (server vouched for by you)")
        return Tier(Risk.external, "no readOnlyHint (server vouched for by you)")
    if destructive:
        return Tier(
            Risk.destructive,
            "destructiveHint of an unvouched server (hints may raise a tier, never lower it)",
        )
    return Tier(
        Risk.external,
        "default for a tool of an unvouched MCP server"
        + (" (its readOnlyHint is not believed)" if read_only else ""),
    )


def takes_url(schema: Mapping[str, Any] | None) -> bool:
    """Whether an input schema has an argument naming a URL: the plan picks the host."""
    props = schema.get("properties") if isinstance(schema, Mapping) else None
    for name, prop in props.items() if isinstance(props, Mapping) else ():
        if not isinstance(prop, dict):
            continue
        if URL_NAME.search(str(name)) or str(prop.get("format")) in URL_FORMATS:
            return True
        if prop.get("type") == "object" and takes_url(prop):
            return True
    return False


def classify(spec: ActionSpec, tier: Tier, *, egress: bool) -> ActionSpec:
    """Give an imported action its tier, the tier's reason and its egress flag."""
    spec.risk = tier.risk
    setattr(spec, "risk_reason", tier.reason)  # noqa: B010 - not an ActionSpec field yet
    setattr(spec, "egress", egress)  # noqa: B010 - added to ActionSpec by the gate's work
    return spec


def reason_of(spec: ActionSpec) -> str:
    """Where an action's tier comes from (for ``openlam actions list|show``)."""
    return getattr(spec, "risk_reason", None) or NO_REASON
