"""The MCP server: any MCP client (an IDE, a desktop assistant) hands goals to the
workforce. Tools: ``run_goal``, ``run_status``, ``list_approvals``, ``decide_approval``,
``list_agents`` — one implementation, served two ways:

* ``openlam mcp serve`` over stdio: the caller is the local user (who holds the
  workspace); deciding approvals checks the workspace's approvers exactly as
  ``openlam approvals`` does. It runs its own queue worker unless ``--no-worker``.
* ``/mcp`` on the server app (streamable HTTP): every request carries an OpenLAM token
  (``Authorization: Bearer …``); each tool needs a role — viewer to read, operator for
  ``run_goal``, approver for ``decide_approval``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal

from fastapi import APIRouter, FastAPI, Request
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from openlam import __version__ as VERSION
from openlam.errors import UserError
from openlam.server.auth import Principal, Role
from openlam.server.compat import work

log = logging.getLogger("openlam.server")
PRINCIPAL_KEY = "openlam.principal"  # where /mcp leaves the caller in the request scope
INSTRUCTIONS = (
    "OpenLAM is a workforce of agents that gets goals done with real tools "
    "and reports honestly. run_goal hands it a goal in plain language and "
    "returns the run's report, or the approvals it waits for."
)


@dataclass(frozen=True)
class Caller:
    """Who calls a tool: a token's principal (HTTP), or the local user (stdio: None)."""

    principal: Principal | None

    def need(self, role: Role) -> None:
        if self.principal is not None and self.principal.role < role:
            raise ToolError(
                f"this tool needs the {role.name} role; {self.principal.name} "
                f"has {self.principal.role.name}"
            )


class RunReply(BaseModel):
    run_id: str
    status: str = Field(
        description="completed | partial | blocked | failed | cancelled, "
        "or waiting (for people) / running / queued"
    )
    report: str = Field(
        description="The honest report: what was done, deliverables, "
        "gaps — or the approvals it waits for, with their ids."
    )
    approvals: list[str] = Field(
        default_factory=list, description="Ids of the approvals the run waits for."
    )


def _reply(reply: work.Reply) -> RunReply:
    return RunReply(
        run_id=reply.run_id,
        status=reply.status,
        report=reply.text,
        approvals=[a.id for a in reply.approvals],
    )


def _tool_error(exc: UserError) -> ToolError:
    message = str(exc.args[0]) if exc.args else str(exc)
    return ToolError(f"{message} ({exc.hint})" if exc.hint else message)


def build_server(
    workforce: Callable[[], Any], caller: Callable[[Context], Caller], *, lifespan: Any = None
) -> MCPServer:
    """The MCP server over ``workforce()``; ``caller(ctx)`` says who calls a tool."""
    server: MCPServer = MCPServer(
        "openlam", version=VERSION, instructions=INSTRUCTIONS, lifespan=lifespan
    )
    reading = ToolAnnotations(read_only_hint=True, open_world_hint=False)

    @server.tool(
        annotations=ToolAnnotations(
            read_only_hint=False, destructive_hint=True, open_world_hint=True
        )
    )
    async def run_goal(
        goal: str,
        ctx: Context,
        agent: str | None = None,
        wait_seconds: float = Field(work.REPLY_SECONDS, gt=0, le=3600),
    ) -> RunReply:
        """Hand the workforce a goal in plain language ("write 'hi' to hello.md"). It is
        queued and worked on; the answer is the run's report when it ends, or — if it
        waits for an approval or an answer — what it waits for (with the approval ids),
        or where it stands after ``wait_seconds``; each step is reported as progress
        as it runs. ``agent``: a catalog agent id
        (list_agents); default: the general operator."""
        caller(ctx).need(Role.operator)
        wf = workforce()
        try:
            if agent is not None:
                work.agent_of(wf.settings, f"{work.MODEL}/{agent}")
            run_id = await work.submit(wf, work.goal_of([{"role": "user", "content": goal}]), agent)
            shown = 0
            async for item in work.drive(wf, run_id, reply_seconds=wait_seconds):
                if isinstance(item, work.Reply):
                    return _reply(item)
                shown += 1  # a progress notification per line (if the client asked)
                with contextlib.suppress(Exception):  # progress is a courtesy
                    await ctx.report_progress(shown, message=item)
        except UserError as exc:
            raise _tool_error(exc) from None
        raise ToolError(f"run {run_id} ended without a report")  # drive always replies

    @server.tool(annotations=reading)
    async def run_status(run_id: str, ctx: Context) -> RunReply:
        """Where a run stands: its report if it ended, the approvals or questions it
        waits for, or that it is still working."""
        caller(ctx).need(Role.viewer)
        try:
            return _reply(await work.status_reply(workforce(), run_id))
        except UserError as exc:
            raise _tool_error(exc) from None

    @server.tool(annotations=reading)
    async def list_approvals(
        ctx: Context,
        status: Literal["pending", "approved", "edited", "denied", "expired"] | None = "pending",
        run_id: str | None = None,
    ) -> list[dict[str, Any]]:
        """Approvals (default: those waiting), oldest first: id, run, step, action, the
        arguments it would run with, why it needs approval."""
        from openlam.governance.api import list_approvals as listed

        caller(ctx).need(Role.viewer)
        rows = await asyncio.to_thread(listed, workforce().settings, status=status, run_id=run_id)
        return [asdict(a) for a in rows]

    @server.tool(annotations=ToolAnnotations(read_only_hint=False, destructive_hint=True))
    async def decide_approval(
        approval_id: str,
        decision: Literal["approve", "deny", "edit"],
        ctx: Context,
        comment: str = "",
        args: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Approve, deny, or edit-and-approve (``args``: the arguments to change) a
        waiting step; the run continues. Needs the approver role."""
        from openlam.governance import api as governance
        from openlam.runtime.process import wake_waiting_run

        who = caller(ctx)
        who.need(Role.approver)
        if decision == "edit" and not args:
            raise ToolError("decision 'edit' needs args: the arguments to change")
        as_whom: dict[str, Any] = (
            {"principal": who.principal.name, "authenticated": True} if who.principal else {}
        )
        as_whom["on_decision"] = wake_waiting_run  # a run of this process wakes at once
        settings = workforce().settings
        try:
            if decision == "edit":
                decided = await asyncio.to_thread(
                    governance.edit, settings, approval_id, args or {}, comment=comment, **as_whom
                )
            else:
                decide = governance.approve if decision == "approve" else governance.deny
                decided = await asyncio.to_thread(
                    decide, settings, approval_id, comment=comment, **as_whom
                )
        except UserError as exc:
            raise _tool_error(exc) from None
        return asdict(decided)

    @server.tool(annotations=reading)
    async def list_agents(ctx: Context, department: str | None = None) -> list[dict[str, Any]]:
        """The workforce's agents (id, name, title, department, manager): give an id to
        run_goal's ``agent``."""
        from openlam.org.loader import load_catalog

        caller(ctx).need(Role.viewer)
        catalog = await asyncio.to_thread(load_catalog, workforce().settings.workspace)
        try:
            wanted = catalog.department(department).id if department else None
        except UserError as exc:
            raise _tool_error(exc) from None
        return [
            {
                "id": a.id,
                "name": a.name,
                "title": a.title,
                "department": a.department,
                "manager": a.manager,
            }
            for a in catalog
            if wanted is None or a.department == wanted
        ]

    return server


# -- stdio: `openlam mcp serve` ---------------------------------------------------------


async def serve_stdio(settings: Any, *, run_worker: bool = True) -> None:
    """Serve the tools over stdin/stdout until the client closes them. The worker starts
    inside the server's lifespan, when stdout already belongs to the protocol (stray
    output goes to stderr)."""
    from openlam.workforce import Workforce

    state: dict[str, Any] = {}

    @contextlib.asynccontextmanager
    async def lifespan(_server: Any) -> AsyncIterator[dict[str, Any]]:
        if not run_worker:
            state["wf"] = Workforce(settings=settings)
            yield {}
            return
        from openlam.runtime.worker import Worker

        worker = Worker(settings, kind="mcp", embedded=True, say=log.info)
        task = asyncio.create_task(worker.run(), name="openlam-mcp-worker")
        ready = asyncio.create_task(worker.ready.wait())
        await asyncio.wait({task, ready}, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            ready.cancel()
            task.result()
        assert worker.rt is not None
        state["wf"] = Workforce.attached(worker.rt)
        try:
            yield {}
        finally:
            worker.stop()
            await task

    server = build_server(lambda: state["wf"], lambda _ctx: Caller(None), lifespan=lifespan)
    await server.run_stdio_async()


# -- streamable HTTP: /mcp on the app ---------------------------------------------------


def _principal_of(ctx: Context) -> Caller:
    request = getattr(ctx.request_context, "request", None)
    principal = getattr(request, "scope", {}).get(PRINCIPAL_KEY) if request else None
    if principal is None:  # /mcp lets no request through without one: never here
        raise ToolError("not authenticated")
    return Caller(principal)


class _Endpoint:
    """``/mcp``: authenticates each request like the rest of the API (a token, or the
    loopback user of an unconfigured server), then hands it to the MCP session manager."""

    def __init__(self) -> None:
        self.manager: Any = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        from openlam.server import auth
        from openlam.server.problems import Problem, problem_response

        try:
            principal = await auth.identify(Request(scope, receive))
            if principal is None:
                raise Problem(
                    401,
                    "Authentication required",
                    "send 'Authorization: Bearer <token>' (create one with "
                    "`openlam tokens create NAME --role ROLE`)",
                    headers={"WWW-Authenticate": "Bearer"},
                )
        except Problem as problem:
            response = problem_response(
                problem.status,
                problem.title,
                problem.detail,
                headers=problem.headers,
                **problem.extra,
            )
            await response(scope, receive, send)
            return
        if self.manager is None:
            response = problem_response(
                503,
                "Service Unavailable",
                "the MCP server is not running (the app's lifespan has not started)",
            )
            await response(scope, receive, send)
            return
        scope[PRINCIPAL_KEY] = principal
        await self.manager.handle_request(scope, receive, send)


def http_router() -> APIRouter:
    """A router with ``/mcp``; its lifespan runs the MCP session manager over the app's
    workforce (made per app: a session manager runs once)."""
    endpoint = _Endpoint()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        server = build_server(lambda: app.state.workforce, _principal_of)
        server.streamable_http_app(stateless_http=True)  # makes its session manager
        running, stop = asyncio.Event(), asyncio.Event()

        async def run() -> None:
            # in a task of its own: the manager's task group is entered and left in one
            # task, whichever tasks start and end the app's lifespan
            async with server.session_manager.run():
                endpoint.manager = server.session_manager
                running.set()
                await stop.wait()

        task = asyncio.create_task(run(), name="openlam-mcp-sessions")
        started = asyncio.create_task(running.wait())
        await asyncio.wait({task, started}, return_when=asyncio.FIRST_COMPLETED)
        if task.done():  # it failed to start: say why
            started.cancel()
            task.result()
        try:
            yield
        finally:
            endpoint.manager = None
            stop.set()
            await task

    router = APIRouter(lifespan=lifespan)
    router.routes.append(
        Route("/mcp", endpoint=endpoint, methods=["GET", "POST", "DELETE"], include_in_schema=False)
    )
    return router
