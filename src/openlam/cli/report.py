"""Rendering of live progress and final reports in the terminal (rich)."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.tree import Tree

from openlam.loop.state import Outcome

STYLE = {"completed": "green", "succeeded": "green", "partial": "yellow", "blocked": "yellow",
         "skipped": "dim", "failed": "red", "cancelled": "red", "running": "cyan",
         "pending": "dim"}
MARK = {"succeeded": "✓", "failed": "✗", "blocked": "■", "skipped": "-"}


def short(value: Any, limit: int = 70) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class Progress:
    """Prints each event of a run as it happens."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.agents: dict[str, str] = {}

    def __call__(self, e: dict[str, Any]) -> None:
        kind, c = e["kind"], self.console
        if kind == "run.started":
            self.agents[e["run_id"]] = e["agent"]
        if e.get("root_id", e["run_id"]) != e["run_id"]:  # a delegated child run
            self.child(e)
        elif kind == "run.started":
            c.print(f"[bold]Goal[/]: {e['goal']}  [dim](agent {e['agent']}, model {e['model']},"
                    f" run {e['run_id']})[/]")
            if e.get("routing"):
                c.print(f"[dim]Routed: {e['routing']}[/]")
        elif kind == "plan":
            c.print(f"[bold]Plan v{e['version']}[/]")
            for s in e["steps"]:
                deps = f" [dim]after {', '.join(s['depends_on'])}[/]" if s.get("depends_on") else ""
                c.print(f"  {s['id']} [cyan]{s['action']}[/] {short(s.get('args', {}), 60)}{deps}")
        elif kind == "step.started":
            c.print(f"  [dim]… {e['step']} {e['action']}[/]")
        elif kind == "step.finished":
            st = e["status"]
            err = f": {e['error']}" if e.get("error") else ""
            c.print(f"  [{STYLE.get(st, 'white')}]{MARK.get(st, '?')} {e['step']} {e['action']}"
                    f"{short(err, 160)}[/]")
        elif kind == "replan":
            c.print(f"[yellow]Replanning[/]: {short(e['reason'], 160)}")
        elif kind == "approval.requested":
            c.print(f"[bold yellow]Waiting for approval[/] of {e['step']} {e['action']}: "
                    f"{e['reason']}\n  decide with: openlam approvals approve|deny|edit "
                    f"{e['approval']}")
        elif kind == "approval.decided":
            c.print(f"  approval {e['approval']}: {e['status']}"
                    + (f" by {e['by']}" if e.get("by") else ""))
        elif kind == "question":
            c.print(f"[bold yellow]Question[/] ({e['step']}): {e['question']}\n"
                    f"  answer with: {e['answer_with']}")

    def child(self, e: dict[str, Any]) -> None:
        """One line per notable event of a delegated run, indented under the parent."""
        who = f"    ↳ [magenta]{self.agents.get(e['run_id'], e['run_id'])}[/]"
        if e["kind"] == "run.started":
            self.console.print(f"{who} takes: {short(e['goal'], 90)}")
        elif e["kind"] == "step.finished":
            st = e["status"]
            err = f": {e['error']}" if e.get("error") else ""
            self.console.print(f"{who} [{STYLE.get(st, 'white')}]{MARK.get(st, '?')} "
                               f"{e['action']}{short(err, 120)}[/]")
        elif e["kind"] == "run.finished":
            self.console.print(f"{who} finished: {e['status']}")


def print_outcome(console: Console, outcome: Outcome) -> None:
    color = STYLE.get(outcome.status.value, "white")
    console.rule(f"[{color}]{outcome.status.value.upper()}[/]")
    console.print(outcome.summary)
    if outcome.routing:
        console.print(f"[dim]Routed to {outcome.agent}: {outcome.routing}[/]")
    if outcome.steps:
        table = Table(show_lines=False, box=None, pad_edge=False)
        for col in ("step", "action", "status", "result"):
            table.add_column(col)
        for s in outcome.steps:
            result = s.error if s.error else short(s.output, 80)
            table.add_row(s.id, s.action, f"[{STYLE.get(s.status.value, 'white')}]"
                          f"{s.status.value}[/]", short(result or "", 100))
        console.print(table)
    if outcome.deliverables:
        console.print("[bold]Deliverables[/]: " + ", ".join(outcome.deliverables))
    for gap in outcome.gaps:
        console.print(f"[yellow]Missing[/] {gap.kind.value}: {gap.what} — {gap.why}")
    u = outcome.usage
    console.print(f"[dim]{u.model_requests} model requests, {u.input_tokens} tokens in, "
                  f"{u.output_tokens} out, {u.wall_seconds:.2f} s[/]")


def run_tree(run: dict[str, Any], load: Any) -> Tree:
    """The delegation tree of a stored run; ``load(id)`` returns a child run."""
    color = STYLE.get(run["status"], "white")
    tree = Tree(f"[{color}]{run['status']}[/] {run['id']} [bold]{run['agent']}[/]: "
                f"{short(run['goal'], 80)}")
    for child in run.get("children", []):
        full = load(child["id"])
        if full is not None:
            tree.add(run_tree(full, load))
    return tree
