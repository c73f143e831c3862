"""The dashboard's pages and forms. Every page reads through :mod:`.views` (the same
functions the CLI uses); every form posts with the session's CSRF token (``server.auth``
checks it); a goal is only ever queued here, never run inside a request."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from openlam.errors import UserError
from openlam.server import auth
from openlam.server.api.common import blocking
from openlam.server.auth import Principal, Role
from openlam.server.web import views
from openlam.server.web.guard import PageRoute, page_user, root
from openlam.server.web.render import render

router = APIRouter(route_class=PageRoute, include_in_schema=False)
Viewer = Annotated[Principal, Depends(page_user(Role.viewer))]
Operator = Annotated[Principal, Depends(page_user(Role.operator))]
Approver = Annotated[Principal, Depends(page_user(Role.approver))]


def _workforce(request: Request) -> Any:
    return request.app.state.workforce


def _page(
    request: Request,
    name: str,
    me: Principal | None,
    nav: str = "",
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    html = render(
        name,
        request=request,
        me=me,
        nav=nav,
        root=root(request),
        csrf=auth.csrf_token(request) if me else "",
        **context,
    )
    return HTMLResponse(html, status_code=status_code)


async def _off_loop(func: Any, *args: Any, **kwargs: Any) -> Any:
    """Database reads are blocking: keep them off the event loop (SSE streams share it),
    on the server's API threads (runs keep the loop's default pool busy)."""
    return await blocking(func, *args, **kwargs)


# -- logging in and out -----------------------------------------------------------------


def _credentials(request: Request) -> Any:
    """The server's token and user store."""
    found = getattr(request.app.state, "credentials", None)
    if found is not None:
        return found
    from openlam.server.credentials import Credentials

    return Credentials(_workforce(request).store.engine)


def _same_origin(request: Request) -> bool:
    """Whether a form post comes from a page of this server (or says nothing: browsers
    send ``Origin`` on cross-site posts)."""
    from urllib.parse import urlsplit

    origin = request.headers.get("origin")
    if not origin or origin == "null":
        return origin is None
    return urlsplit(origin).netloc == request.headers.get("host", "")


def _safe_next(target: str) -> str:
    """Only a path on this server (never another site) to go to after logging in."""
    return target if target.startswith("/") and not target.startswith("//") else "/"


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request, next: str = "/") -> HTMLResponse:
    return _page(request, "login.html", None, next=_safe_next(next))


@router.post("/login")
async def login(
    request: Request,
    token: Annotated[str, Form()] = "",
    user: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    if not _same_origin(request):  # another site may not log a browser in (login CSRF)
        return _page(
            request,
            "login.html",
            None,
            next="/",
            status_code=403,
            error="This login form was sent from another site; log in here.",
        )
    creds = _credentials(request)
    principal = None
    if token.strip():
        principal = await _off_loop(auth.authenticate_token, creds, token.strip())
    elif user.strip() and password:
        principal = await _off_loop(auth.authenticate_password, creds, user.strip(), password)
    if principal is None:
        error = (
            "That token is unknown or revoked."
            if token.strip()
            else "Wrong user or password."
            if user.strip()
            else "Give a token, or a user and password."
        )
        return _page(
            request, "login.html", None, next=_safe_next(next), error=error, status_code=401
        )
    response = RedirectResponse(root(request) + _safe_next(next), status_code=303)
    auth.start_session(response, principal)
    return response


@router.post("/logout")
async def logout(request: Request, me: Viewer) -> Response:
    response = RedirectResponse(f"{root(request)}/login", status_code=303)
    auth.end_session(response)
    return response


# -- pages ------------------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
async def overview(request: Request, me: Viewer) -> HTMLResponse:
    wf = _workforce(request)
    data = await _off_loop(views.overview, wf.settings, wf.store)
    return _page(request, "overview.html", me, "overview", **data)


@router.get("/runs", response_class=HTMLResponse)
async def runs(
    request: Request, me: Viewer, status: str = "", offset: int = 0, top: str = ""
) -> HTMLResponse:
    wf = _workforce(request)
    try:
        page = await _off_loop(views.runs, wf.store, status, offset, top_level=bool(top))
    except UserError as exc:
        return _page(
            request,
            "runs.html",
            me,
            "runs",
            rows=[],
            states=views.STATES,
            status="",
            top="",
            error=str(exc),
            status_code=400,
        )
    return _page(
        request, "runs.html", me, "runs", states=views.STATES, status=status, top=top, **page
    )


@router.get("/runs/{run_id}", response_class=HTMLResponse)
async def run_page(request: Request, run_id: str, me: Viewer) -> Response:
    return await _run_again(request, run_id, me)


@router.post("/runs/{run_id}/cancel")
async def cancel_run(request: Request, run_id: str, me: Operator) -> Response:
    """Stop a run and its delegated children (no further step starts)."""
    from openlam.runtime import admin

    wf = _workforce(request)
    try:
        said = await _off_loop(
            admin.cancel,
            wf.settings,
            wf.store,
            run_id,
            by=me.name,
            reason="cancelled from the dashboard",
        )
    except UserError as exc:
        return await _run_again(request, run_id, me, error=str(exc))
    return await _run_again(request, run_id, me, notice=said[:1].upper() + said[1:] + ".")


@router.post("/runs/{run_id}/answer")
async def answer(
    request: Request,
    run_id: str,
    me: Operator,
    step: Annotated[str, Form()] = "",
    text: Annotated[str, Form()] = "",
) -> Response:
    """Answer a question the run asked; it continues."""
    from openlam.runtime.human import answer_question

    if not text.strip():
        return await _run_again(request, run_id, me, error="Write an answer first.")
    try:
        await _off_loop(
            answer_question, _workforce(request).settings, run_id, step, text.strip(), me.name
        )
    except UserError as exc:
        return await _run_again(request, run_id, me, error=str(exc))
    return await _run_again(request, run_id, me, notice=f"Answered step {step}; the run continues.")


async def _run_again(request: Request, run_id: str, me: Principal, **flash: str) -> Response:
    """The run page (after a change made from it: saying what happened), or the runs
    page with a 404 when there is no such run."""
    wf = _workforce(request)
    try:
        data = await _off_loop(views.run, wf.settings, wf.store, run_id)
    except LookupError as exc:
        return _page(
            request,
            "runs.html",
            me,
            "runs",
            rows=[],
            states=views.STATES,
            status="",
            top="",
            error=str(exc.args[0]),
            status_code=404,
        )
    return _page(
        request,
        "run.html",
        me,
        "runs",
        tree_root=data.pop("tree"),
        can_operate=me.role >= Role.operator,
        status_code=400 if "error" in flash else 200,
        **data,
        **flash,
    )


@router.get("/runs/{run_id}/files/{name:path}")
async def deliverable(request: Request, run_id: str, name: str, me: Viewer) -> Response:
    wf = _workforce(request)
    try:
        path = await _off_loop(views.deliverable_path, wf.settings, wf.store, run_id, name)
    except LookupError as exc:
        return HTMLResponse(f"<p>{_escape(exc.args[0])}</p>", status_code=404)
    return FileResponse(path, filename=path.name)


@router.get("/goal", response_class=HTMLResponse)
async def goal_page(request: Request, me: Operator) -> HTMLResponse:
    return _page(
        request,
        "goal.html",
        me,
        "goal",
        **await _off_loop(_goal_choices, request),
        goal="",
        assign="",
        agent="",
    )


def _goal_choices(request: Request) -> dict[str, Any]:
    from openlam.org.loader import load_catalog

    catalog = load_catalog(_workforce(request).settings.workspace)
    departments = sorted(catalog.departments.values(), key=lambda d: d.name.lower())
    return {"departments": departments, "agents": sorted(a.id for a in catalog)}


@router.post("/goal")
async def submit_goal(
    request: Request,
    me: Operator,
    goal: Annotated[str, Form()] = "",
    assign: Annotated[str, Form()] = "",
    agent: Annotated[str, Form()] = "",
) -> Response:
    wf = _workforce(request)
    options: dict[str, Any] = {"route": assign == "route"}
    if agent.strip():
        options = {"agent": agent.strip(), "route": False}
    elif assign.startswith("department:"):
        options = {"department": assign.removeprefix("department:"), "route": False}
    try:
        request_ = await wf.submit(goal, **options)
    except UserError as exc:
        return _page(
            request,
            "goal.html",
            me,
            "goal",
            **await _off_loop(_goal_choices, request),
            goal=goal,
            assign=assign,
            agent=agent,
            error=str(exc),
            status_code=400,
        )
    return RedirectResponse(f"{root(request)}/runs/{quote(request_.run_id)}", status_code=303)


@router.get("/approvals", response_class=HTMLResponse)
async def approvals(request: Request, me: Viewer, all: str = "") -> HTMLResponse:
    rows = await _off_loop(views.approvals, _workforce(request).settings, bool(all))
    return _page(
        request,
        "approvals.html",
        me,
        "approvals",
        rows=rows,
        show_all=bool(all),
        can_decide=me.role >= Role.approver,
    )


@router.get("/approvals/waiting", response_class=HTMLResponse)
async def waiting_count(request: Request, me: Viewer) -> HTMLResponse:
    """The navigation's badge: how many approvals wait (polled by htmx)."""
    from openlam.governance.api import list_approvals

    rows = await _off_loop(list_approvals, _workforce(request).settings, status="pending")
    return HTMLResponse(f'<span class="count">{len(rows)}</span>' if rows else "")


@router.post("/approvals/{approval_id}")
async def decide(
    request: Request,
    approval_id: str,
    me: Approver,
    decision: Annotated[str, Form()] = "",
    comment: Annotated[str, Form()] = "",
    args: Annotated[str, Form()] = "",
) -> Response:
    from openlam.server.web.decide import decide as record

    settings = _workforce(request).settings
    try:
        decided = await _off_loop(
            record, settings, approval_id, decision, me.name, comment=comment, args_json=args
        )
    except UserError as exc:
        rows = await _off_loop(views.approvals, settings, False)
        return _page(
            request,
            "approvals.html",
            me,
            "approvals",
            rows=rows,
            show_all=False,
            can_decide=True,
            error=str(exc),
            status_code=400,
        )
    rows = await _off_loop(views.approvals, settings, False)
    return _page(
        request,
        "approvals.html",
        me,
        "approvals",
        rows=rows,
        show_all=False,
        can_decide=True,
        notice=f"Approval {decided.id} ({decided.action} in run "
        f"{decided.run_id}): {decided.status}.",
    )


@router.get("/org", response_class=HTMLResponse)
async def org(request: Request, me: Viewer) -> HTMLResponse:
    data = await _off_loop(views.org, _workforce(request).settings)
    return _page(request, "org.html", me, "org", **data)


@router.get("/audit", response_class=HTMLResponse)
async def audit(request: Request, me: Viewer, run: str = "") -> HTMLResponse:
    data = await _off_loop(views.audit, _workforce(request).settings, run.strip())
    return _page(request, "audit.html", me, "audit", verdict=None, **data)


@router.post("/audit/verify", response_class=HTMLResponse)
async def verify(request: Request, me: Viewer, expect: Annotated[str, Form()] = "") -> HTMLResponse:
    from openlam.governance.api import verify_audit

    settings = _workforce(request).settings
    try:
        verdict: Any = await _off_loop(verify_audit, settings, expect.strip() or None)
    except UserError as exc:
        verdict = _Verdict(False, str(exc))
    if request.headers.get("hx-request"):
        return HTMLResponse(render("_verdict.html", verdict=verdict))
    data = await _off_loop(views.audit, settings)
    return _page(request, "audit.html", me, "audit", verdict=verdict, **data)


class _Verdict:
    def __init__(self, ok: bool, text: str) -> None:
        self.ok, self.text = ok, text

    def __str__(self) -> str:
        return self.text


@router.get("/learning", response_class=HTMLResponse)
async def learning(request: Request, me: Viewer) -> HTMLResponse:
    data = await _off_loop(views.learning, _workforce(request).settings)
    return _page(request, "learning.html", me, "learning", **data)


@router.get("/gaps", response_class=HTMLResponse)
async def gaps(request: Request, me: Viewer) -> HTMLResponse:
    rows = await _off_loop(views.gaps, _workforce(request).settings)
    return _page(request, "gaps.html", me, "gaps", gaps=rows)


def _escape(text: str) -> str:
    import html

    return html.escape(text)
