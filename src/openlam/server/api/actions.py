"""``/api/v1/actions`` and ``/api/v1/sources``: the action surface (built-ins, plugins,
MCP servers, OpenAPI services), and adding an MCP server or OpenAPI service — through
the same code as ``openlam mcp add`` and ``openlam openapi add``."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from openlam.server.api.common import PREFIX, Admin, Viewer, blocking, settings
from openlam.server.auth import Principal

router = APIRouter(prefix=PREFIX, tags=["actions"])
RISKS = ("read", "write", "external", "financial", "destructive")
Risks = dict[Annotated[str, Field(max_length=256)], Literal[RISKS]]  # type: ignore[valid-type]


@router.get("/actions")
async def list_actions(
    request: Request,
    risk: Annotated[str | None, Query(pattern="^(" + "|".join(RISKS) + ")$")] = None,
    source: Annotated[
        str | None,
        Query(
            max_length=256,
            description="A plugin (email), a kind (mcp, openapi) or one source (mcp:time).",
        ),
    ] = None,
    _principal: Principal = Viewer,
) -> dict[str, Any]:
    """Every action, with its risk tier (and why) and source."""
    from openlam.actions.registry import action_summary, load_plugins

    registry = await blocking(load_plugins, settings=settings(request))
    specs = [
        s
        for s in registry
        if (risk is None or s.risk.value == risk)
        and (source is None or s.source == source or s.source.split(":", 1)[0] == source)
    ]
    return {"actions": [action_summary(s) for s in specs], "warnings": list(registry.load_errors)}


@router.get("/sources")
async def list_sources(request: Request, _principal: Principal = Viewer) -> dict[str, Any]:
    """Configured MCP servers and OpenAPI services: kind, where, who may use them."""
    from openlam.actions.kinds import configured

    def load() -> list[dict[str, Any]]:
        found = configured(settings(request))
        return [
            {
                "name": name,
                "kind": kind.kind,
                "describe": config.describe(),
                "trusted": bool(getattr(config, "trusted", False)),
                "grants": list(getattr(config, "grants", [])),
            }
            for name, (kind, config) in sorted(found.items())
        ]

    return {"sources": await blocking(load)}


class McpSource(BaseModel):
    kind: Literal["mcp"]
    name: str = Field(max_length=64, description="The prefix of its actions.")
    command: list[Annotated[str, Field(max_length=4096)]] | None = Field(
        default=None, max_length=256, description="A stdio server: the command and its arguments."
    )
    url: str | None = Field(
        default=None, max_length=2048, description="A streamable HTTP endpoint."
    )
    env: dict[str, str] = Field(default_factory=dict)
    env_secrets: dict[str, str] = Field(
        default_factory=dict, description="VAR → secret name (stdio)."
    )
    bearer: str | None = Field(default=None, max_length=128, description="Secret name (HTTP).")
    header_secrets: dict[str, str] = Field(default_factory=dict)
    risk: Risks = Field(default_factory=dict, description="tool → risk tier.")
    trust: bool = False
    grants: list[Annotated[str, Field(max_length=200)]] = Field(
        default_factory=list, max_length=100
    )
    timeout: float | None = Field(default=None, gt=0, le=3600)
    connect: bool = Field(default=True, description="Start it now and list its tools.")
    replace: bool = False


class OpenApiSource(BaseModel):
    kind: Literal["openapi"]
    name: str = Field(max_length=64, description="The prefix of its actions.")
    spec: str = Field(
        min_length=1,
        max_length=4096,
        description="An http(s) URL, or a file path relative to the workspace.",
    )
    base_url: str | None = Field(default=None, max_length=2048)
    auth: str | None = Field(
        default=None,
        max_length=512,
        description="bearer:SECRET | header:NAME:SECRET | "
        "basic:USER_SECRET:PASS_SECRET | query:PARAM:SECRET",
    )
    risk: Risks = Field(default_factory=dict, description="operation → risk tier.")
    trust: bool = False
    grants: list[Annotated[str, Field(max_length=200)]] = Field(
        default_factory=list, max_length=100
    )
    timeout: float | None = Field(default=None, gt=0, le=3600)
    replace: bool = False


@router.post("/sources", status_code=201)
async def add_source(
    body: Annotated[McpSource | OpenApiSource, Field(discriminator="kind")],
    request: Request,
    _principal: Principal = Admin,
) -> dict[str, Any]:
    """Add an MCP server or an OpenAPI service; its tools/operations become actions."""
    from openlam.actions import adding, mcp, openapi
    from openlam.actions.registry import action_summary

    s = settings(request)
    if isinstance(body, McpSource):
        server, cache = await adding.add_mcp_server(
            s,
            body.name,
            command=body.command,
            url=body.url,
            env=body.env,
            env_secrets=body.env_secrets,
            bearer=body.bearer,
            header_secrets=body.header_secrets,
            risk={k: str(v) for k, v in body.risk.items()},
            trust=body.trust,
            grants=body.grants,
            timeout=body.timeout,
            connect=body.connect,
            replace=body.replace,
        )
        specs = mcp.server_specs(server, cache, s.workspace) if cache is not None else []
        return {
            "name": server.name,
            "kind": "mcp",
            "grants": list(server.grants),
            "actions": [action_summary(spec) for spec in specs],
            "unusable": mcp.unusable_tools(cache) if cache is not None else [],
        }
    service, compiled = await blocking(
        adding.add_openapi_service,
        s,
        body.name,
        body.spec,
        base_url=body.base_url,
        auth=body.auth,
        risk={k: str(v) for k, v in body.risk.items()},
        trust=body.trust,
        grants=body.grants,
        timeout=body.timeout,
        replace=body.replace,
        relative_to=s.workspace,
    )
    return {
        "name": service.name,
        "kind": "openapi",
        "grants": list(service.grants),
        "actions": [action_summary(spec) for spec in openapi.operation_specs(service, compiled)],
    }


@router.delete("/sources/{name}", status_code=204)
async def remove_source(name: str, request: Request, _principal: Principal = Admin) -> None:
    """Remove a configured source (its actions disappear)."""
    from openlam.actions.kinds import find

    def remove() -> None:
        kind, config = find(settings(request), name)
        kind.remove(settings(request), config.name)

    await blocking(remove)
