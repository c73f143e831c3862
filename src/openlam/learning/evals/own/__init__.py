"""OpenLAM's own suite: tasks over the built-in actions — files, documents, CRM, email
through a local SMTP server, web through a local site, an OpenAPI service, an MCP server,
delegation — each checked on the real end state. See docs/eval.md."""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

from openlam.learning.evals.own.peers import Mailbox, Site, smtp_available
from openlam.learning.evals.own.tasks import TASKS, OwnTask, World
from openlam.learning.evals.suite import Episode, EvalTask, Suite

LOOPBACK = '[network]\nallow_networks = ["127.0.0.0/8"]\n'


def _plan(steps: list[dict[str, Any]], answer: str | None = None) -> dict[str, Any]:
    """A ground-truth plan: the steps in order (each after the one before)."""
    ordered = [
        {**s, "depends_on": [steps[i - 1]["id"]]} if i else dict(s) for i, s in enumerate(steps)
    ]
    return {"steps": ordered, **({"answer": answer} if answer else {})}


class OwnSuite(Suite):
    name = "openlam"
    description = (
        "OpenLAM's own tasks over the built-in actions (files, documents, CRM, "
        "email, web, OpenAPI, MCP, delegation), checked on the end state"
    )

    def tasks(self) -> list[EvalTask]:
        mail = smtp_available()
        return [self._task(t) for t in TASKS if mail or t.area != "email"]

    @staticmethod
    def _task(t: OwnTask) -> EvalTask:
        plans = {t.goal: _plan(t.steps, t.answer)}
        plans.update({goal: _plan(steps) for goal, steps in (t.children or {}).items()})
        return EvalTask(
            id=t.id, goal=t.goal, split=t.split, plans=plans, tags=(t.area,), data={"own": t}
        )

    def unavailable(self) -> str | None:
        return None

    @asynccontextmanager
    async def episode(self, task: EvalTask, workspace: Path) -> AsyncIterator[Episode]:
        own: OwnTask = task.data["own"]
        async with AsyncExitStack() as stack:
            site = stack.enter_context(Site())
            mailbox = stack.enter_context(Mailbox()) if smtp_available() else None
            kv_file = workspace.parent / f"{workspace.name}-kv.json"
            stack.callback(kv_file.unlink, missing_ok=True)
            await _configure(workspace, site, mailbox, kv_file, own)
            _localize(task, site.url)

            def check(outcome: Any) -> Any:
                return own.check(World(workspace, site, mailbox, kv_file, outcome))

            yield check


def _localize(task: EvalTask, url: str) -> None:
    """Put the site's address (known only now) into the goal and the plans."""

    def fill(text: str) -> str:
        return text.replace("{site}", url)

    task.goal = fill(task.goal)
    task.plans = {fill(g): json.loads(fill(json.dumps(p))) for g, p in task.plans.items()}


async def _configure(
    workspace: Path, site: Site, mailbox: Mailbox | None, kv_file: Path, own: OwnTask
) -> None:
    """The workspace of one task: loopback reachable, the mail server, the tickets
    service and the kv MCP server as sources, and the task's seed files."""
    from openlam.actions import mcp, openapi
    from openlam.config import load_settings

    workspace.mkdir(parents=True, exist_ok=True)
    (workspace / "openlam.toml").write_text(
        LOOPBACK + (mailbox.toml() if mailbox else ""), encoding="utf-8"
    )
    for path, text in (own.seed or {}).items():
        target = workspace / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    settings = load_settings(workspace)
    if own.area == "openapi":
        service = openapi.ServiceConfig(
            name="tickets", spec=f"{site.url}/openapi.json", trusted=True
        )
        openapi.save_service(settings, service, openapi.prepare(service))
    if own.area == "mcp":
        server = mcp.ServerConfig(
            name="kv",
            transport="stdio",
            command=sys.executable,
            args=["-m", "openlam.learning.evals.own.mcp_peer", str(kv_file)],
            trusted=True,
        )
        mcp.save_server(settings, server)
        try:
            await mcp.refresh_server(settings, server)  # the tools, cached as `mcp add` does
        finally:
            await mcp.aclose_all()


def suite() -> OwnSuite:
    return OwnSuite()
