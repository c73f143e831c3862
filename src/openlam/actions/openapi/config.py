"""Configured OpenAPI services: ``.openlam/openapi.json`` and the compiled operations in
``.openlam/cache/openapi/NAME.json``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from openlam.actions.sources import SourceConfig, Sources
from openlam.errors import UserError

COMPILED_FORMAT = 2  # 2: request bodies flattened into named arguments, tiers computed at load
DEFAULT_TIMEOUT = 30.0
MAX_RESPONSE_BYTES = 10_000_000
SECRET_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass
class ServiceConfig(SourceConfig):
    spec: str
    base_url: str | None = None
    auth: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    max_bytes: int = MAX_RESPONSE_BYTES

    def __post_init__(self) -> None:
        super().__post_init__()
        parse_auth(self.auth)
        if self.base_url and not self.base_url.startswith(("http://", "https://")):
            raise UserError(
                f"OpenAPI service {self.name}: base URL {self.base_url!r} is not an http(s) URL",
                "e.g. --base-url https://api.example.com/v1",
            )

    def describe(self) -> str:
        return self.spec

    @property
    def secrets(self) -> tuple[str, ...]:
        auth = parse_auth(self.auth)
        return tuple(v for k, v in (auth or {}).items() if k.endswith("secret"))


def parse_auth(text: str | None) -> dict[str, str] | None:
    """``bearer:S`` | ``header:NAME:S`` | ``basic:USER_S:PASS_S`` | ``query:PARAM:S``."""
    if not text:
        return None
    parts = text.split(":")
    kind = parts[0].lower()
    shapes = {
        "bearer": ["secret"],
        "header": ["header", "secret"],
        "basic": ["user_secret", "password_secret"],
        "query": ["param", "secret"],
    }
    if kind not in shapes or len(parts) - 1 != len(shapes[kind]) or not all(parts[1:]):
        raise UserError(
            f"auth {text!r} is not understood",
            "use bearer:SECRET_NAME, header:X-API-Key:SECRET_NAME, "
            "basic:USER_SECRET:PASSWORD_SECRET or query:api_key:SECRET_NAME "
            "(names of secrets, never the values)",
        )
    auth = {"kind": kind, **dict(zip(shapes[kind], parts[1:], strict=True))}
    for key, value in auth.items():
        if key.endswith("secret") and not SECRET_PATTERN.match(value):
            raise UserError(
                f"auth {text!r}: {value!r} is not a secret name",
                "name the secret (e.g. CRM_TOKEN) and store its value with "
                "`openlam secrets set CRM_TOKEN`",
            )
    return auth


def operations_of(compiled: dict[str, Any]) -> list[tuple[str, str]]:
    return [(op["action"], op["description"]) for op in compiled["operations"]]


SERVICES = Sources(
    "openapi",
    ServiceConfig,
    key="services",
    what="OpenAPI service",
    member="operation",
    refresh="refresh",
    indent=1,
    members=operations_of,
    valid=lambda compiled: (
        compiled.get("format") == COMPILED_FORMAT and isinstance(compiled.get("operations"), list)
    ),
)
"""``.openlam/openapi.json`` and the operations compiled into ``.openlam/cache/openapi/``."""
read_compiled = SERVICES.read_cache


def load_services(settings: Any) -> dict[str, ServiceConfig]:
    return SERVICES.load(settings)


def save_service(settings: Any, service: ServiceConfig, compiled: dict[str, Any]) -> None:
    SERVICES.write_cache(settings, service.name, compiled)
    SERVICES.save(settings, service.name, service.to_dict())
