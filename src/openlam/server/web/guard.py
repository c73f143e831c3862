"""Who may see a dashboard page: the server's own authentication (``server.auth``),
answered the way a browser needs — the login page instead of a 401 problem, a page
saying which role is missing instead of a 403 problem."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import quote

from fastapi import Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute

from openlam.errors import UserError
from openlam.server.auth import Principal, Role, csrf_token, identify
from openlam.server.problems import Problem, from_user_error


class _PageRefused(Exception):
    def __init__(self, response: Response) -> None:
        self.response = response


class PageRoute(APIRoute):
    """A dashboard route: a refusal raised by :func:`page_user` becomes its response, and
    an error (a wrong CSRF token, a broken configuration file) a page saying what is wrong
    and how to fix it — a browser shows HTML, not problem JSON."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except _PageRefused as refused:
                return refused.response
            except Problem as problem:
                return error_page(
                    request,
                    problem.status,
                    problem.title,
                    problem.detail,
                    problem.extra.get("fix", ""),
                )
            except UserError as exc:
                problem = from_user_error(exc)
                return error_page(
                    request, problem.status, problem.title, problem.detail, exc.hint or ""
                )

        return guarded


def error_page(
    request: Request, status: int, title: str, detail: str, fix: str = ""
) -> HTMLResponse:
    from openlam.server.web.render import render

    me = getattr(request.state, "principal", None)
    html = render(
        "error.html",
        me=me,
        title=title,
        detail=detail,
        fix=fix,
        status=status,
        root=root(request),
        csrf=csrf_token(request) if me else "",
        nav="",
    )
    return HTMLResponse(html, status_code=status)


def page_user(role: Role) -> Callable[[Request], Coroutine[Any, Any, Principal]]:
    """A dependency: the logged-in principal with at least ``role``; otherwise the login
    page (no credentials) or a page naming the role needed (too low a role). A bad token
    or a missing CSRF token stays the server's problem answer."""

    async def dependency(request: Request) -> Principal:
        principal = await identify(request)
        if principal is None:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            if request.method != "GET":
                target = "/"
            login = f"{root(request)}/login?next={quote(target, safe='')}"
            if request.headers.get("hx-request"):  # htmx: navigate the whole page
                raise _PageRefused(Response(status_code=204, headers={"HX-Redirect": login}))
            raise _PageRefused(RedirectResponse(login, status_code=303))
        if principal.role < role:
            from openlam.server.web.render import render

            html = render(
                "forbidden.html",
                me=principal,
                needed=f"the {role.name} role",
                root=root(request),
                csrf="",
                nav="",
            )
            raise _PageRefused(HTMLResponse(html, status_code=403))
        request.state.principal = principal
        return principal

    dependency.__name__ = f"page_{role.name}"
    return dependency


def root(request: Request) -> str:
    """Where the dashboard is mounted (its links start with it)."""
    return request.scope.get("root_path", "").rstrip("/")
