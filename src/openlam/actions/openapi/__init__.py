"""OpenAPI 3 services as a source of actions: every operation of a configured service
is an action ``SERVICE.operation``.

Where things live (inside the workspace's state directory, ``.openlam/``):

* ``openapi.json`` — the configured services, written by ``openlam openapi add|rm``::

      {"services": {"crm": {"spec": "https://…/openapi.json", "base_url": "https://…",
                            "auth": "bearer:CRM_TOKEN", "risk": {"delete_note": "write"},
                            "trusted": false, "grants": ["operator"], "timeout": 30}}}

  ``auth`` names secrets, never values: ``bearer:SECRET``, ``header:X-API-Key:SECRET``,
  ``basic:USER_SECRET:PASSWORD_SECRET`` or ``query:api_key:SECRET``. The values are read
  through ``ActionContext.secret`` when an operation is called.
* ``cache/openapi/NAME.json`` — the operations compiled from the spec when it was added
  (or refreshed with ``openlam openapi refresh``), so loading the registry neither
  fetches nor parses the spec.

The modules: :mod:`.config` (what is configured), :mod:`.compile` (spec → operations),
:mod:`.client` (calling one); risk tiers are :mod:`openlam.actions.risk`'s.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from openlam.actions import risk
from openlam.actions.openapi.client import (
    IDEMPOTENT_METHODS,
    aclose_all,
    call_operation,
    close_all,
    new_http_client,
)
from openlam.actions.openapi.compile import compile_spec, describe, load_document, prepare, snake
from openlam.actions.openapi.config import (
    SERVICES,
    ServiceConfig,
    load_services,
    parse_auth,
    read_compiled,
    save_service,
)
from openlam.actions.schema_text import with_details
from openlam.actions.spec import ActionContext, ActionSpec, json_schema_validator

__all__ = [
    "SERVICES",
    "ServiceConfig",
    "aclose_all",
    "call_operation",
    "close_all",
    "compile_spec",
    "describe",
    "load_document",
    "load_services",
    "new_http_client",
    "operation_specs",
    "operation_tier",
    "parse_auth",
    "prepare",
    "read_compiled",
    "register",
    "save_service",
    "snake",
]


def operation_tier(service: ServiceConfig, op: dict[str, Any]) -> risk.Tier:
    chosen = service.risk.get(op["action"]) or service.risk.get(op.get("operation_id") or "")
    if chosen:
        return risk.chosen_by_user(chosen)
    return risk.operation_tier(
        op["method"],
        declared=op.get("declared_risk"),
        tool_type=tuple(op["tool_type"]) if op.get("tool_type") else None,
        trusted=service.trusted,
    )


def operation_specs(service: ServiceConfig, compiled: dict[str, Any]) -> list[ActionSpec]:
    specs = []
    base_url = service.base_url or compiled.get("base_url")
    for op in compiled["operations"]:
        name = f"{service.name}.{op['action']}"
        description = with_details(op["description"], op["input_schema"])
        spec = ActionSpec(
            name=name,
            description=description + (" (deprecated)" if op.get("deprecated") else ""),
            input_schema=op["input_schema"],
            output_schema=op["output_schema"],
            risk=risk.Risk.external,
            func=_operation_caller(service, op, base_url),
            idempotent=op["method"].lower() in IDEMPOTENT_METHODS,
            secrets=service.secrets,
            source=f"openapi:{service.name}",
            wants_context=True,
            validator=json_schema_validator(op["input_schema"], title=name),
        )
        specs.append(
            risk.classify(
                spec, operation_tier(service, op), egress=risk.takes_url(op["input_schema"])
            )
        )
    return specs


def _operation_caller(
    service: ServiceConfig, op: dict[str, Any], base_url: str | None
) -> Callable[..., Any]:
    async def call(ctx: ActionContext, **arguments: Any) -> Any:
        return await call_operation(
            service,
            op,
            arguments,
            base_url=base_url,
            secret=ctx.secret,
            idempotency_key=ctx.idempotency_key,
            settings=ctx.settings,
        )

    call.__name__ = f"openapi_{service.name}_{op['action']}"
    return call


def register(registry: Any, settings: Any = None) -> None:
    """Entry point ``openlam.plugins: openapi``: the compiled operations of every service."""
    SERVICES.register(
        registry, settings, lambda _settings, service, compiled: operation_specs(service, compiled)
    )
