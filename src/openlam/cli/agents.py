"""``openlam agents list|show|tree|route`` and ``openlam departments``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from openlam.org.loader import Catalog
    from openlam.org.model import Agent

agents_app = typer.Typer(
    help="The workforce's agents: list, show, org chart, routing.", no_args_is_help=True
)
Workspace = Annotated[
    Path | None,
    typer.Option(
        help="Workspace directory whose agents/*.yaml add to or override the catalog "
        "(default: cwd)."
    ),
]
Json = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def install(app: typer.Typer) -> None:
    app.add_typer(agents_app, name="agents")
    app.command("departments")(departments)


def _catalog(workspace: Path | None) -> Catalog:
    """The workspace's catalog; workspace files it had to leave out are warned about."""
    from openlam.cli.console import console, esc
    from openlam.config import load_settings
    from openlam.org.loader import load_catalog

    catalog = load_catalog(load_settings(workspace).workspace)
    err = console(stderr=True)
    for problem in catalog.load_errors:
        err.print(f"[yellow]warning:[/] {esc(problem)}")
    return catalog


def _console() -> Any:
    from openlam.cli.console import console

    return console()


@agents_app.command("list")
def list_agents(
    department: Annotated[
        str | None, typer.Option("--department", "-d", help="Only this department (id or name).")
    ] = None,
    workspace: Workspace = None,
    json_output: Json = False,
) -> None:
    """Every agent: id, name, title, department and manager."""
    import json

    from openlam.cli.console import Column, esc, print_table
    from openlam.org.views import agent_json, ordered_departments

    catalog = _catalog(workspace)
    dept_ids = [catalog.department(department).id] if department else ordered_departments(catalog)
    rows = [a for d in dept_ids for a in catalog.members(d)]
    if json_output:
        typer.echo(json.dumps([agent_json(catalog, a) for a in rows], indent=2))
        return
    console = _console()
    print_table(
        console,
        [Column("id", key=True), "name", "title", "department", "manager"],
        (
            (a.id, a.name, a.title, catalog.departments[a.department].name, a.manager or "—")
            for a in rows
        ),
    )
    where = (
        f" in {esc(catalog.departments[dept_ids[0]].name)}"
        if department
        else f" in {len(dept_ids)} departments"
    )
    console.print(f"\n{len(rows)} agents{where}.")


@agents_app.command("show")
def show(
    agent_id: Annotated[str, typer.Argument(help="Agent id, e.g. chief_of_staff.")],
    workspace: Workspace = None,
    json_output: Json = False,
) -> None:
    """One agent: role, instructions, reporting line, permitted actions and budget."""
    import fnmatch
    import json

    from openlam.org.views import agent_json

    catalog = _catalog(workspace)
    agent = catalog.agent(agent_id)
    if json_output:
        typer.echo(json.dumps(agent_json(catalog, agent), indent=2))
        return
    from rich.markup import escape

    from openlam.actions.grants import describe_grants
    from openlam.actions.registry import load_plugins
    from openlam.config import load_settings

    registry = load_plugins(settings=load_settings(workspace))  # the workspace's sources too
    names = [s.name for s in registry]
    dept = catalog.departments[agent.department]
    console = _console()
    console.print(f"[bold]{escape(agent.name)}[/] — {escape(agent.title)}  ({agent.id})")
    console.print(f"department  {escape(dept.name)} ({dept.id})")
    chain = " → ".join(f"{a.title} ({a.id})" for a in catalog.chain(agent.id)[1:])
    console.print(f"reports to  {escape(chain) or '— (chief executive)'}")
    reports = catalog.reports(agent.id)
    if reports:
        console.print("reports     " + ", ".join(f"{r.id}" for r in reports))
    console.print(f"model       {escape(agent.model or '(workspace default)')}")
    budget = agent.budget
    limits = [
        f"{k}={v}" for k, v in (budget.model_dump() if budget else {}).items() if v is not None
    ]
    console.print(f"budget      {', '.join(limits) or '(workspace defaults)'}")
    console.print(f"defined in  {escape(catalog.source(agent.id))}")
    console.print(f"\n[bold]Instructions[/]\n{escape(agent.instructions)}\n")
    console.print("[bold]Permitted actions[/]")
    granted = {s.pattern: s for s in catalog.granted(agent.id)}
    patterns = catalog.permitted_patterns(agent.id)
    if not patterns:
        console.print("  none (it can only delegate or answer in text)")
    for pattern in patterns:
        matched = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
        source = granted.get(pattern)
        why = (
            f" [dim](granted by {source.kind} source {escape(source.name)} to "
            f"{escape(describe_grants(source.grants))})[/]"
            if source
            else ""
        )
        if matched:
            shown = ", ".join(matched[:8]) + (f", … ({len(matched)})" if len(matched) > 8 else "")
            console.print(f"  {escape(pattern):<28} {escape(shown)}{why}")
        else:
            console.print(f"  {escape(pattern):<28} [yellow]matches no installed action[/]{why}")


@agents_app.command("tree")
def tree(
    department: Annotated[
        str | None,
        typer.Option("--department", "-d", help="Only this department's part of the chart."),
    ] = None,
    workspace: Workspace = None,
) -> None:
    """The org chart, from the chief executive down."""
    from rich.markup import escape
    from rich.tree import Tree

    catalog = _catalog(workspace)
    only = catalog.department(department).id if department else None

    def label(a: Agent) -> str:
        dept = catalog.departments[a.department].name
        return f"[bold]{escape(a.title)}[/] {escape(a.name)} [dim]{a.id} · {escape(dept)}[/]"

    def grow(node: Tree, agent: Agent) -> None:
        for child in catalog.reports(agent.id):
            if only is None or child.department == only or _leads_into(catalog, child, only):
                grow(node.add(label(child)), child)

    top = catalog.head(only) if only else catalog.root
    assert top is not None
    root = Tree(label(top), guide_style="dim")
    grow(root, top)
    _console().print(root)


def _leads_into(catalog: Catalog, agent: Agent, department: str) -> bool:
    return any(
        _leads_into(catalog, r, department) or r.department == department
        for r in catalog.reports(agent.id)
    )


@agents_app.command("route")
def route_goal(
    goal: Annotated[str, typer.Argument(help="The goal to route, in plain language.")],
    department: Annotated[
        str | None, typer.Option("--department", "-d", help="Route within this department only.")
    ] = None,
    top: Annotated[int, typer.Option(min=1, max=50, help="Candidates to list.")] = 5,
    workspace: Workspace = None,
    json_output: Json = False,
) -> None:
    """Which agent would own a goal, and why (deterministic scoring, no model)."""
    import json

    from rich.markup import escape

    from openlam.actions.registry import load_plugins
    from openlam.cli.console import Column, print_table
    from openlam.config import load_settings
    from openlam.org.routing import route
    from openlam.org.select import agent_records

    catalog = _catalog(workspace)
    settings = load_settings(workspace)
    installed = [s.name for s in load_plugins(settings=settings)]
    chosen = route(
        goal,
        catalog,
        department=department,
        installed=installed,
        records=agent_records(settings, goal),
    )
    if json_output:
        typer.echo(
            json.dumps(
                {
                    "agent": chosen.agent.id,
                    "department": chosen.department.id,
                    "score": chosen.score,
                    "method": chosen.method,
                    "reason": chosen.reason,
                    "candidates": [
                        {"agent": c.agent.id, "department": c.department.id, "score": c.score}
                        for c in chosen.candidates[:top]
                    ],
                },
                indent=2,
            )
        )
        return
    console = _console()
    console.print(f"[bold]{escape(chosen.agent.id)}[/] ({escape(chosen.department.name)})")
    console.print(escape(chosen.reason))
    print_table(
        console,
        [Column("score", justify="right"), Column("agent", key=True), "title", "department"]
        + [Column(col, justify="right") for col in ("dept", "role", "actions")],
        (
            (
                f"{c.score:.2f}",
                c.agent.id,
                c.agent.title,
                c.department.name,
                f"{c.department_score:.2f}",
                f"{c.role_score:.2f}",
                f"{c.action_cover:.2f}",
            )
            for c in chosen.candidates[:top]
        ),
    )


def departments(workspace: Workspace = None, json_output: Json = False) -> None:
    """The departments: head, number of agents and what each one does."""
    import json

    from openlam.cli.console import Column, print_table
    from openlam.org.views import department_json, ordered_departments

    catalog = _catalog(workspace)
    ids = ordered_departments(catalog)
    if json_output:
        typer.echo(json.dumps([department_json(catalog, d) for d in ids], indent=2))
        return
    console = _console()
    print_table(
        console,
        [Column("id", key=True), "name", "head", Column("agents", justify="right"), "description"],
        (
            (
                d,
                catalog.departments[d].name,
                head.id if (head := catalog.head(d)) else "—",
                len(catalog.members(d)),
                catalog.departments[d].description,
            )
            for d in ids
        ),
    )
    console.print(f"\n{len(ids)} departments, {len(catalog)} agents.")
