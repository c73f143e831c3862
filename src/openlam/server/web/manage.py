"""The dashboard's forms that change what the workforce can use and when it works by
itself: adding and removing MCP servers and OpenAPI services (the Actions page), and
schedules and webhook triggers (the Schedules page).

They go through the same functions as the REST API (``/api/v1/sources``,
``/api/v1/schedules``, ``/api/v1/triggers``) and need the same role, admin. Each form
posts with the session's CSRF token; with htmx the answer replaces the page's ``main``
in place, without it the browser shows the whole page. A refused input comes back as
the same page with the form still filled in and the reason next to it (422), never as
a traceback."""

from __future__ import annotations

import logging
import shlex
from typing import Annotated, Any

from fastapi import Depends, Form, Request
from fastapi.responses import HTMLResponse

from openlam.errors import UserError
from openlam.server.auth import Principal, Role
from openlam.server.web import views
from openlam.server.web.guard import page_user
from openlam.server.web.routes import _off_loop, _page, _workforce, router

log = logging.getLogger("openlam.server")
Viewer = Annotated[Principal, Depends(page_user(Role.viewer))]
Admin = Annotated[Principal, Depends(page_user(Role.admin))]
INVALID = 422  # what htmx is configured to swap in (base.html): the form with its error


def _problem(exc: Exception) -> str:
    """A refusal as one line for the page: a UserError with its fix; anything else named,
    logged with its traceback for the operator (the page never shows one)."""
    if isinstance(exc, UserError):
        said = str(exc.args[0]) if exc.args else ""
        return f"{said}. Fix: {exc.hint}" if exc.hint else said
    if isinstance(exc, ValueError):  # pydantic's validation errors among them
        return " ".join(str(exc).split())[:600]
    log.warning("a dashboard form failed", exc_info=exc)
    return f"{type(exc).__name__}: {exc}"[:600]


def _check_sizes(form: dict[str, str], big: tuple[str, ...] = ("goal",)) -> None:
    """Refuse an oversized field as the API's models do (a goal may be long)."""
    for key, value in form.items():
        limit = 20_000 if key in big else 4096
        if len(value) > limit:
            raise UserError(f"the {key} is too long ({len(value)} characters)", f"at most {limit}")


def _grants(text: str) -> list[str]:
    return [g for g in text.replace(",", " ").split() if g]


def _form_page(
    request: Request,
    me: Principal,
    page: str,
    data: dict[str, Any],
    form: dict[str, str] | None,
    failed: str,
    error: str,
    **extra: Any,
) -> HTMLResponse:
    """A page of lists and the forms that change them: a refused form comes back (422)
    with what was typed and the reason inside that form."""
    return _page(
        request,
        f"{page}.html",
        me,
        page,
        status_code=INVALID if error else 200,
        can_manage=me.role >= Role.admin,
        form=form or {},
        failed=failed,
        form_error=error,
        **extra,
        **data,
    )


# -- the Actions page: sources ----------------------------------------------------------


async def _actions_page(
    request: Request,
    me: Principal,
    *,
    form: dict[str, str] | None = None,
    failed: str = "",
    error: str = "",
    notice: str = "",
) -> HTMLResponse:
    data = await _off_loop(views.actions, _workforce(request).settings)
    return _form_page(request, me, "actions", data, form, failed, error, notice=notice)


@router.get("/actions", response_class=HTMLResponse)
async def actions(request: Request, me: Viewer) -> HTMLResponse:
    return await _actions_page(request, me)


@router.post("/sources/mcp", response_class=HTMLResponse)
async def add_mcp(
    request: Request,
    me: Admin,
    name: Annotated[str, Form()] = "",
    command: Annotated[str, Form()] = "",
    url: Annotated[str, Form()] = "",
    grants: Annotated[str, Form()] = "",
    trust: Annotated[str, Form()] = "",
    connect: Annotated[str, Form()] = "",
) -> HTMLResponse:
    """Add an MCP server: a command started over stdio, or a streamable HTTP URL."""
    from openlam.actions import adding

    form = {
        "name": name,
        "command": command,
        "url": url,
        "grants": grants,
        "trust": trust,
        "connect": connect,
    }
    try:
        _check_sizes(form)
        if not name.strip():
            raise UserError("give the server a name", "it prefixes its actions, e.g. time")
        argv = shlex.split(command) if command.strip() else None
        server, cache = await adding.add_mcp_server(
            _workforce(request).settings,
            name.strip(),
            command=argv,
            url=url.strip() or None,
            trust=bool(trust),
            grants=_grants(grants),
            connect=bool(connect),
        )
    except Exception as exc:
        return await _actions_page(request, me, form=form, failed="mcp", error=_problem(exc))
    from openlam.actions.mcp import tool_names

    tools = len(tool_names(cache)) if cache is not None else None
    said = f"MCP server {server.name} added" + (
        f" with {tools} tool(s)" if tools is not None else " (its tools are listed on first use)"
    )
    return await _actions_page(request, me, notice=said + ".")


@router.post("/sources/openapi", response_class=HTMLResponse)
async def add_openapi(
    request: Request,
    me: Admin,
    name: Annotated[str, Form()] = "",
    spec: Annotated[str, Form()] = "",
    base_url: Annotated[str, Form()] = "",
    grants: Annotated[str, Form()] = "",
    trust: Annotated[str, Form()] = "",
) -> HTMLResponse:
    """Add a REST service from its OpenAPI document (an http(s) URL, or a path relative
    to the workspace); each operation becomes an action."""
    from openlam.actions import adding

    form = {"name": name, "spec": spec, "base_url": base_url, "grants": grants, "trust": trust}
    settings = _workforce(request).settings
    try:
        _check_sizes(form)
        if not name.strip():
            raise UserError("give the service a name", "it prefixes its actions, e.g. tickets")
        if not spec.strip():
            raise UserError(
                "give the OpenAPI document",
                "an http(s) URL, or a file path relative to the workspace",
            )
        service, compiled = await _off_loop(
            adding.add_openapi_service,
            settings,
            name.strip(),
            spec.strip(),
            base_url=base_url.strip() or None,
            trust=bool(trust),
            grants=_grants(grants),
            relative_to=settings.workspace,
        )
    except Exception as exc:
        return await _actions_page(request, me, form=form, failed="openapi", error=_problem(exc))
    from openlam.actions import openapi

    count = len(openapi.operation_specs(service, compiled))
    return await _actions_page(
        request, me, notice=f"OpenAPI service {service.name} added with {count} operation(s)."
    )


@router.post("/sources/{name}/remove", response_class=HTMLResponse)
async def remove_source(request: Request, name: str, me: Admin) -> HTMLResponse:
    """Remove a configured source (its actions disappear)."""
    from openlam.actions.kinds import find

    settings = _workforce(request).settings

    def remove() -> None:
        kind, config = find(settings, name)
        kind.remove(settings, config.name)

    try:
        await _off_loop(remove)
    except Exception as exc:
        return await _actions_page(request, me, failed="remove", error=_problem(exc))
    return await _actions_page(request, me, notice=f"Source {name} removed.")


# -- the Schedules page: schedules and triggers -----------------------------------------


def _schedules_data(request: Request) -> dict[str, Any]:
    from openlam.runtime import schedules
    from openlam.runtime.triggers import Triggers, describe

    wf = _workforce(request)
    return {
        "schedules": sorted(schedules.list_all(wf.settings), key=lambda s: s["name"]),
        "triggers": [describe(t) for t in Triggers(wf.store.engine).list()],
    }


async def _schedules_page(
    request: Request,
    me: Principal,
    *,
    form: dict[str, str] | None = None,
    failed: str = "",
    error: str = "",
    notice: str = "",
    secret: dict[str, str] | None = None,
) -> HTMLResponse:
    data = await _off_loop(_schedules_data, request)
    return _form_page(
        request, me, "schedules", data, form, failed, error, notice=notice, secret=secret
    )


@router.get("/schedules", response_class=HTMLResponse)
async def schedules_page(request: Request, me: Viewer) -> HTMLResponse:
    return await _schedules_page(request, me)


@router.post("/schedules", response_class=HTMLResponse)
async def add_schedule(
    request: Request,
    me: Admin,
    when: Annotated[str, Form()] = "",
    goal: Annotated[str, Form()] = "",
    name: Annotated[str, Form()] = "",
    agent: Annotated[str, Form()] = "",
    catch_up: Annotated[str, Form()] = "",
) -> HTMLResponse:
    """Run a goal on a schedule (a running worker fires it)."""
    from openlam.runtime import schedules

    form = {"when": when, "goal": goal, "name": name, "agent": agent, "catch_up": catch_up}
    settings = _workforce(request).settings
    try:
        _check_sizes(form)
        if not when.strip():
            raise UserError("say when", 'e.g. "every weekday at 9:00" or cron "0 9 * * 1-5"')
        if not goal.strip():
            raise UserError("write the goal to run", "e.g. send me the open deals summary")
        if agent.strip():
            from openlam.org.loader import load_catalog

            load_catalog(settings.workspace).agent(agent.strip())  # raises naming close ones
        added = await _off_loop(
            schedules.add,
            settings,
            when.strip(),
            goal.strip(),
            name=name.strip() or None,
            agent=agent.strip() or None,
            catch_up=bool(catch_up),
        )
    except Exception as exc:
        return await _schedules_page(request, me, form=form, failed="schedule", error=_problem(exc))
    zone = added.get("timezone") or "UTC"
    return await _schedules_page(
        request,
        me,
        notice=f"Schedule {added['name']} added: cron {added['cron']} ({zone}).",
    )


@router.post("/schedules/{name}/remove", response_class=HTMLResponse)
async def remove_schedule(request: Request, name: str, me: Admin) -> HTMLResponse:
    from openlam.runtime import schedules

    try:
        await _off_loop(schedules.remove, _workforce(request).settings, name)
    except Exception as exc:
        return await _schedules_page(request, me, failed="remove", error=_problem(exc))
    return await _schedules_page(request, me, notice=f"Schedule {name} removed.")


@router.post("/triggers", response_class=HTMLResponse)
async def add_trigger(
    request: Request,
    me: Admin,
    name: Annotated[str, Form()] = "",
    goal: Annotated[str, Form()] = "",
    agent: Annotated[str, Form()] = "",
    secret: Annotated[str, Form()] = "",
) -> HTMLResponse:
    """A webhook trigger: each POST to /hooks/NAME with its secret starts the goal, the
    request's body handed to it as untrusted context. Its secret is shown once."""
    from openlam.runtime.triggers import Triggers, new_trigger

    form = {"name": name, "goal": goal, "agent": agent}  # the secret is never sent back
    wf = _workforce(request)
    try:
        _check_sizes({**form, "secret": secret})
        if not name.strip():
            raise UserError("give the trigger a name", "it is part of its URL: /hooks/NAME")
        if agent.strip():
            from openlam.org.loader import load_catalog

            load_catalog(wf.settings.workspace).agent(agent.strip())
        trigger = new_trigger(
            "webhook",
            name.strip(),
            goal,
            agent=agent.strip() or None,
            secret=secret.strip() or None,
        )
        token = await _off_loop(Triggers(wf.store.engine).add, trigger)
    except Exception as exc:
        return await _schedules_page(request, me, form=form, failed="trigger", error=_problem(exc))
    shown = {"name": trigger.name, "url": f"/hooks/{trigger.name}", "secret": token or ""}
    return await _schedules_page(
        request, me, notice=f"Webhook trigger {trigger.name} added.", secret=shown
    )


@router.post("/triggers/{name}/remove", response_class=HTMLResponse)
async def remove_trigger(request: Request, name: str, me: Admin) -> HTMLResponse:
    from openlam.runtime.triggers import Triggers

    try:
        await _off_loop(Triggers(_workforce(request).store.engine).remove, name)
    except Exception as exc:
        return await _schedules_page(request, me, failed="remove", error=_problem(exc))
    return await _schedules_page(request, me, notice=f"Trigger {name} removed.")
