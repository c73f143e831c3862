"""Adding a source of actions — an MCP server or an OpenAPI service — to a workspace:
the checks and the saving that ``openlam mcp add`` / ``openlam openapi add`` and the
server's ``POST /api/v1/sources`` share."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from openlam.errors import UserError

if TYPE_CHECKING:
    from openlam.actions.sources import Sources


def check_new(sources: Sources[Any], settings: Any, name: str, *, replace: bool) -> None:
    """Refuse an unusable name, or one already configured unless ``replace`` (a name
    taken by a source of another kind is refused: their actions would collide)."""
    from openlam.actions.kinds import configured

    sources.check_name(name)
    taken = configured(settings).get(name)
    if taken is not None and taken[0].kind != sources.kind:
        raise UserError(
            f"{name} is already the name of an {taken[0].what} ({taken[1].describe()})",
            "choose another name",
        )
    if taken is not None and not replace:
        raise UserError(
            f"an {sources.what} named {name} is already configured ({taken[1].describe()})",
            f"pass --replace, or remove it first with `openlam {sources.kind} rm`",
        )


def resolve_grants(settings: Any, given: list[str] | None, *, default: bool = True) -> list[str]:
    """Who may use a source's actions: the operator (unless ``default`` is False) plus
    every grant given; agent ids and departments are checked against the catalog."""
    from openlam.actions.sources import DEFAULT_GRANTS, check_grant

    grants: list[str] = list(DEFAULT_GRANTS) if default else []
    for grant in given or []:
        grant = check_grant(grant)
        if grant not in grants:
            grants.append(grant)
    if any(g != "all" for g in grants):
        check_grantees(settings, grants)
    return grants


def check_grantees(settings: Any, grants: list[str]) -> None:
    """Refuse a grant naming an agent or department the workspace's catalog lacks."""
    from openlam.actions.grants import DEPARTMENT
    from openlam.org.loader import load_catalog

    catalog = load_catalog(settings.workspace)
    for grant in grants:
        if grant == "all":
            continue
        if grant.startswith(DEPARTMENT):
            catalog.department(grant[len(DEPARTMENT) :])  # raises naming close matches
        else:
            catalog.agent(grant)


async def add_mcp_server(
    settings: Any,
    name: str,
    *,
    command: list[str] | None = None,
    url: str | None = None,
    env: dict[str, str] | None = None,
    env_secrets: dict[str, str] | None = None,
    bearer: str | None = None,
    header_secrets: dict[str, str] | None = None,
    risk: dict[str, str] | None = None,
    trust: bool = False,
    grants: list[str] | None = None,
    max_message_mb: float | None = None,
    timeout: float | None = None,
    cwd: str | None = None,
    connect: bool = True,
    replace: bool = False,
) -> tuple[Any, dict[str, Any] | None]:
    """Configure an MCP server (stdio ``command`` or HTTP ``url``). With ``connect`` it
    is started once to list its tools (cached), then stopped. Returns the server's
    configuration and its tool cache (None when not connected)."""
    from openlam.actions import mcp
    from openlam.actions.sources import check_overrides

    check_new(mcp.SERVERS, settings, name, replace=replace)
    if bool(command) == bool(url):
        raise UserError(
            "give either a command (after --) or --url, not both and not neither",
            f"openlam mcp add {name} -- mcp-server-time   or   "
            f"openlam mcp add {name} --url http://127.0.0.1:8000/mcp",
        )
    if url and not url.startswith(("http://", "https://")):
        raise UserError(f"{url!r} is not an http(s) URL", "e.g. --url http://127.0.0.1:8000/mcp")
    if url and (env or env_secrets or cwd):
        raise UserError(
            "--env, --env-secret and --cwd apply to stdio servers only",
            "drop them, or start the server with a command instead of --url",
        )
    if command and (bearer or header_secrets):
        raise UserError(
            "--bearer and --header-secret apply to HTTP servers only",
            "pass secrets to a stdio server with --env-secret KEY=SECRET_NAME",
        )
    if max_message_mb is not None and not url:
        raise UserError(
            "--max-message-mb applies to HTTP servers only",
            "drop it: a stdio server's messages have no such limit",
        )
    options: dict[str, Any] = {}
    if max_message_mb is not None:
        options["max_message_bytes"] = int(max_message_mb * 1024 * 1024)
    server = mcp.ServerConfig(
        name=name,
        transport="http" if url else "stdio",
        command=command[0] if command else None,
        args=list(command[1:]) if command else [],
        env=dict(env or {}),
        env_secrets=dict(env_secrets or {}),
        cwd=cwd,
        url=url,
        bearer_secret=bearer,
        header_secrets=dict(header_secrets or {}),
        risk=dict(risk or {}),
        timeout=timeout,
        trusted=trust,
        grants=resolve_grants(settings, grants),
        **options,
    )
    if not connect:
        mcp.save_server(settings, server)
        mcp.cache_path(settings, name).unlink(missing_ok=True)
        return server, None
    cache = await refresh_mcp_server(settings, server)
    check_overrides("tool of the server", server.risk, mcp.tool_names(cache))
    mcp.save_server(settings, server)
    return server, cache


async def refresh_mcp_server(settings: Any, server: Any) -> dict[str, Any]:
    """Start ``server``, list its tools into its cache, stop it; the cache, with the
    seconds it took under ``_seconds``."""
    import time

    from openlam.actions import mcp

    started = time.perf_counter()
    try:
        cache = await mcp.refresh_server(settings, server)
    finally:
        await mcp.aclose_all()
    cache["_seconds"] = time.perf_counter() - started
    return cache


def add_openapi_service(
    settings: Any,
    name: str,
    spec: str,
    *,
    base_url: str | None = None,
    auth: str | None = None,
    risk: dict[str, str] | None = None,
    trust: bool = False,
    grants: list[str] | None = None,
    timeout: float | None = None,
    replace: bool = False,
    relative_to: Path | None = None,
) -> tuple[Any, dict[str, Any]]:
    """Configure a REST service from its OpenAPI document (a file, resolved against
    ``relative_to`` — default the current directory — or an http(s) URL); each
    operation becomes an action. Returns the service and its compiled operations."""
    from openlam.actions import openapi

    check_new(openapi.SERVICES, settings, name, replace=replace)
    source = spec
    if not spec.startswith(("http://", "https://")):
        path = Path(spec).expanduser()
        if not path.is_absolute() and relative_to is not None:
            path = relative_to / path
        source = str(path.resolve())
    options: dict[str, Any] = {"base_url": base_url, "auth": auth, "risk": dict(risk or {})}
    if timeout is not None:
        options["timeout"] = timeout
    service = openapi.ServiceConfig(
        name=name, spec=source, trusted=trust, grants=resolve_grants(settings, grants), **options
    )
    compiled = openapi.prepare(service)
    openapi.save_service(settings, service, compiled)
    return service, compiled
