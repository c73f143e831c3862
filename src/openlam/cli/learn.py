"""``openlam learn``: what the workforce has learned — playbooks, lessons, tool
reliability — to review, export or forget."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from openlam.learning.store import LearningStore

learn_app = typer.Typer(
    help="What the workforce has learned: playbooks, lessons, tools.", no_args_is_help=True
)
Workspace = Annotated[Path | None, typer.Option(help="Workspace directory (default: cwd).")]
Json = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def install(app: typer.Typer) -> None:
    app.add_typer(learn_app, name="learn")


def _store(workspace: Path | None) -> LearningStore:
    from openlam.config import load_settings
    from openlam.learning.store import LearningStore
    from openlam.memory.store import Store

    url = load_settings(workspace).app_database_url
    Store(url)  # creates or upgrades the tables
    return LearningStore(url)


def _out():
    from openlam.cli.console import console

    return console()


@learn_app.command("show")
def show(workspace: Workspace = None) -> None:
    """A summary: how many playbooks (and which are demoted), lessons, tracked actions."""
    from openlam.learning.store import DEMOTE_AFTER

    store = _store(workspace)
    pbs, lessons, tools = store.playbooks(), store.lessons(limit=10_000), store.tool_stats()
    demoted = [p for p in pbs if p.failing >= DEMOTE_AFTER]
    c = _out()
    c.print(
        f"Playbooks: {len(pbs)} ({len(demoted)} demoted, not replayed); runs they "
        f"came from or served successfully: {sum(p.successes for p in pbs)}"
    )
    c.print(f"Lessons from people: {len(lessons)}")
    shaky = [t for t in tools if t["calls"] >= 5 and t["success_rate"] < 0.8]
    c.print(f"Actions tracked: {len(tools)} ({len(shaky)} unreliable)")
    c.print("[dim]openlam learn playbooks | lessons | tools | dump | export | forget ID[/]")


@learn_app.command("playbooks")
def playbooks(workspace: Workspace = None, json_output: Json = False) -> None:
    """Learned playbooks: the goal shape, parameters, provenance and record."""
    from openlam.cli.console import esc
    from openlam.learning.store import DEMOTE_AFTER

    pbs = _store(workspace).playbooks()
    if json_output:
        typer.echo(json.dumps([p.__dict__ for p in pbs], indent=2))
        return
    c = _out()
    if not pbs:
        c.print("No playbooks yet: a run that completes with every step verified teaches one.")
        return
    for p in pbs:
        state = "demoted" if p.failing >= DEMOTE_AFTER else "active"
        c.print(f"[bold]{p.id}[/] ({state}) {esc(p.example)}")
        c.print(
            f"  steps: {esc(' → '.join(p.actions))}; parameters: "
            + esc(", ".join(f"{k}: {v}" for k, v in p.params.items()) or "none")
        )
        c.print(
            f"  agent {esc(p.agent)}, model {esc(p.model)}; {p.successes} succeeded, "
            f"{p.failures} failed; runs: {esc(', '.join(p.runs[-3:]))}"
            + (f"; last failure: {esc(p.last_failure)}" if p.last_failure else "")
        )


@learn_app.command("lessons")
def lessons(
    workspace: Workspace = None,
    agent: Annotated[str | None, typer.Option(help="Only this agent's lessons.")] = None,
    json_output: Json = False,
) -> None:
    """Lessons from people (denied or edited approvals, answers), shown to the planner."""
    from openlam.cli.console import esc

    rows = _store(workspace).lessons(agent)
    if json_output:
        typer.echo(json.dumps(rows, indent=2))
        return
    c = _out()
    if not rows:
        c.print("No lessons yet: denied or edited approvals and answered questions teach them.")
        return
    for row in rows:
        c.print(
            f"[bold]{row['id']}[/] {esc(row['agent'])} · {esc(row['action'])} "
            f"({row['kind']}, run {esc(row['run_id'])})"
        )
        c.print(f"  {esc(row['text'])}")


@learn_app.command("tools")
def tools(workspace: Workspace = None, json_output: Json = False) -> None:
    """Reliability per action and per source (builtin, each MCP server, OpenAPI service):
    calls, success rate, latency percentiles, commonest error."""
    from openlam.cli.console import Column, print_table
    from openlam.cli.report import short

    store = _store(workspace)
    rows, sources = store.tool_stats(), store.source_stats()
    community = _community(workspace)  # `openlam federate`: other organisations' rates
    for r in rows:
        if r["action"] in community.get("actions", {}):
            r["community_rate"] = community["actions"][r["action"]]["rate"]
    for s in sources:
        if s["source"] in community.get("sources", {}):
            s["community_rate"] = community["sources"][s["source"]]["rate"]
    if json_output:
        typer.echo(
            json.dumps(
                {
                    "actions": [{k: v for k, v in r.items() if k != "latencies"} for r in rows],
                    "sources": sources,
                },
                indent=2,
            )
        )
        return
    c = _out()
    if not rows:
        c.print("No actions have run yet.")
        return
    for title, first, items in (("By action", "action", rows), ("By source", "source", sources)):
        numbers = [Column(col, justify="right") for col in ("calls", "success", "p50 ms", "p95 ms")]
        print_table(
            c,
            [
                Column(first, key=True),
                "source" if first == "action" else "actions",
                *numbers,
                *(["community"] if community else []),
                "commonest error",
            ],
            (
                (
                    r[first],
                    r["source"] if first == "action" else r["actions"],
                    r["calls"],
                    f"{r['success_rate']:.0%}",
                    f"{r['p50_ms']:g}",
                    f"{r['p95_ms']:g}",
                    *([_percent(r.get("community_rate"))] if community else []),
                    short(next(iter(r["errors"]), ""), 60),
                )
                for r in items
            ),
            title=title,
        )


def _percent(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:.0%}"


def _community(workspace: Path | None) -> dict:
    """The success rates last received from a federation (``openlam federate``), if any."""
    from openlam.config import load_settings
    from openlam.learning.federated.membership import community

    return community(load_settings(workspace).workspace) or {}


@learn_app.command("export")
def export(
    workspace: Workspace = None,
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format",
            help="sft | dpo: training data as JSONL (default: everything "
            "learned, as JSON on stdout).",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Where to write the JSONL (default: exports/openlam-FORMAT.jsonl in "
            "the workspace); a dataset card README.md is written next to it."
        ),
    ] = None,
) -> None:
    """Everything learned, as JSON on stdout (for review or another workspace); with
    --format, training data with secrets and personal data removed."""
    if fmt is None:
        typer.echo(json.dumps(_store(workspace).export(), indent=2, default=str))
        return
    from openlam.cli.console import esc
    from openlam.config import load_settings
    from openlam.learning.export import export as export_training
    from openlam.memory.store import Store

    settings = load_settings(workspace)
    Store(settings.app_database_url)  # creates or upgrades the tables
    target = out or settings.workspace / "exports" / f"openlam-{fmt}.jsonl"
    report = export_training(settings, fmt, target)
    c = _out()
    c.print(
        f"wrote {report.records} {fmt} record(s) to {esc(str(report.path))}; dataset "
        f"card {esc(str(report.card))}"
    )
    if report.skipped:
        c.print("left out: " + esc(", ".join(f"{v} {k}" for k, v in report.skipped.items())))
    c.print(
        "removed: "
        + (esc(", ".join(f"{v} {k}" for k, v in report.removed.items())) or "nothing found")
    )


@learn_app.command("forget")
def forget(
    ident: Annotated[
        str, typer.Argument(help="A playbook (pb-…) or lesson (ls-…) id, or a unique prefix.")
    ],
    workspace: Workspace = None,
) -> None:
    """Remove a playbook or lesson: it is no longer replayed or shown to the planner."""
    from openlam.errors import UserError

    removed = _store(workspace).forget(ident)
    if removed is None:
        raise UserError(
            f"no playbook or lesson {ident!r} (or it matches more than one)",
            "see the ids with `openlam learn playbooks` and `openlam learn lessons`",
        )
    typer.echo(f"forgot {removed}")


@learn_app.command("dump")
def dump(
    workspace: Workspace = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write the JSON to this file (default: stdout)."),
    ] = None,
) -> None:
    """Everything learned — playbooks, lessons, tool reliability per action and source,
    agents' records — as one JSON document to review or share: secrets masked, email
    addresses kept to their domain."""
    from openlam.actions.registry import load_plugins
    from openlam.actions.secrets import Redactor
    from openlam.config import load_settings
    from openlam.errors import UserError
    from openlam.learning.review import learned

    settings = load_settings(workspace)
    names = [n for spec in load_plugins(settings=settings) for n in spec.secrets]
    document = learned(_store(workspace), Redactor.for_settings(settings, names))
    text = json.dumps(document, indent=2, default=str, ensure_ascii=False)
    if output is None:
        typer.echo(text)
        return
    if not output.parent.is_dir():
        raise UserError(
            f"cannot write {output}: the folder {output.parent} does not exist",
            "create it first, or give --output a path in an existing folder",
        )
    output.write_text(text + "\n", encoding="utf-8")
    typer.echo(
        f"wrote {len(document['playbooks'])} playbooks, {len(document['lessons'])} "
        f"lessons, {len(document['tools']['actions'])} actions and "
        f"{len(document['agents'])} agent records to {output}"
    )
