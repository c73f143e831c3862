"""Rendering of live progress and final reports in the terminal (rich).

Goals, agent ids, step ids, arguments, results and errors are data, not markup: each
goes through :func:`esc` after :func:`short` (escaping first could cut an escape in two).
"""

from __future__ import annotations

import atexit
import json
import threading
import time
from typing import Any

from rich.console import Console
from rich.status import Status
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from openlam.cli.console import esc
from openlam.loop.state import Outcome

STYLE = {
    "completed": "green",
    "succeeded": "green",
    "partial": "yellow",
    "blocked": "yellow",
    "skipped": "dim",
    "failed": "red",
    "cancelled": "red",
    "running": "cyan",
    "pending": "dim",
}
MARK = {"succeeded": "✓", "failed": "✗", "blocked": "■", "skipped": "-"}
REMIND_EVERY = 15.0  # seconds between "still waiting" lines off a terminal
NARROW = 60  # columns below which the steps are listed, not tabled


def short(value: Any, limit: int = 70) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def styled(status: str, text: str) -> str:
    """``text`` (already markup) in the colour of ``status``."""
    return f"[{status_style(status)}]{text}[/]"


def status_style(status: str) -> str:
    return STYLE.get(status, "white")


def _delegated(e: dict[str, Any]) -> bool:
    """Whether an event comes from a child run (a delegated sub-goal)."""
    return e.get("root_id", e["run_id"]) != e["run_id"]


class Waiting:
    """Shows that a model request is under way until :meth:`stop`.

    On a terminal: a live line with the seconds elapsed. Elsewhere (pipes, logs): the line
    at once, then "still waiting for the model (N s)" every :data:`REMIND_EVERY` seconds.
    """

    def __init__(self, console: Console, label: str, indent: str = "") -> None:
        self.console, self.label, self.indent = console, label, indent
        self.started = time.monotonic()
        self.stopped = threading.Event()
        self.status: Status | None = None
        if console.is_terminal:
            self.status = Status(self, console=console)
            self.status.start()
            atexit.register(self.stop)  # never leave the terminal's cursor hidden
        else:
            console.print(f"{indent}[dim]{esc(label)}[/]")
            threading.Thread(target=self._remind, daemon=True, name="openlam-waiting").start()

    def __rich__(self) -> Text:  # the live line after the spinner, redrawn as it turns
        return Text(f"{self.label} {self.elapsed():.0f} s", style="dim")

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def _remind(self) -> None:
        while not self.stopped.wait(REMIND_EVERY):
            self.console.print(
                f"{self.indent}[dim]still waiting for the model ({self.elapsed():.0f} s)[/]"
            )

    def stop(self) -> None:
        if self.stopped.is_set():
            return
        self.stopped.set()
        if self.status is not None:
            self.status.stop()
            atexit.unregister(self.stop)


class Progress:
    """Prints each event of a run as it happens. Use it as a context manager (or call
    :meth:`close`) so that a wait indicator never outlives the run."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.agents: dict[str, str] = {}
        self.waiting: Waiting | None = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.waiting is not None:
            self.waiting.stop()
            self.waiting = None

    def __call__(self, e: dict[str, Any]) -> None:
        self.close()  # any event, the answer included, ends the wait for the model
        kind, c = e["kind"], self.console
        if kind == "run.started":
            self.agents[e["run_id"]] = e["agent"]
        if kind == "model.requested":
            self.ask(e)
        elif kind == "model.answered" and e.get("error"):
            indent = "    ↳ " if _delegated(e) else "  "
            c.print(f"{indent}[red]✗ the model failed: {esc(short(e['error'], 300))}[/]")
        elif _delegated(e):
            self.child(e)
        elif kind == "run.started":
            c.print(
                f"[bold]Goal[/]: {esc(e['goal'])}  [dim](agent {esc(e['agent'])}, model "
                f"{esc(e['model'])}, run {esc(e['run_id'])})[/]"
            )
            if e.get("routing"):
                c.print(f"[dim]Routed: {esc(e['routing'])}[/]")
        elif kind == "plan":
            c.print(f"[bold]Plan v{esc(e['version'])}[/]")
            for s in e["steps"]:
                deps = (
                    f" [dim]after {esc(', '.join(s['depends_on']))}[/]"
                    if s.get("depends_on")
                    else ""
                )
                c.print(
                    f"  {esc(s['id'])} [cyan]{esc(s['action'])}[/] "
                    f"{esc(short(s.get('args', {}), 60))}{deps}"
                )
        elif kind == "step.started":
            c.print(f"  [dim]… {esc(e['step'])} {esc(e['action'])}[/]")
        elif kind == "step.finished":
            st = e["status"]
            err = esc(short(f": {e['error']}", 160)) if e.get("error") else ""
            c.print(
                "  " + styled(st, f"{MARK.get(st, '?')} {esc(e['step'])} {esc(e['action'])}{err}")
            )
        elif kind == "replan":
            c.print(f"[yellow]Replanning[/]: {esc(short(e['reason'], 160))}")
        elif kind == "approval.requested":
            c.print(
                f"[bold yellow]Waiting for approval[/] of {esc(e['step'])} "
                f"{esc(e['action'])}: {esc(e['reason'])}\n  decide with: openlam approvals "
                f"approve|deny|edit {esc(e['approval'])}"
            )
        elif kind == "approval.decided":
            by = f" by {esc(e['by'])}" if e.get("by") else ""
            c.print(f"  approval {esc(e['approval'])}: {esc(e['status'])}{by}")
        elif kind == "question":
            c.print(
                f"[bold yellow]Question[/] ({esc(e['step'])}): {esc(e['question'])}\n"
                f"  answer with: {esc(e['answer_with'])}"
            )

    def ask(self, e: dict[str, Any]) -> None:
        """A model request went out: show it, and how long it has been waiting."""
        if _delegated(e):
            agent = self.agents.get(e["run_id"], e["run_id"])
            self.waiting = Waiting(self.console, f"{agent} is asking the model…", "    ↳ ")
        else:
            self.waiting = Waiting(self.console, "asking the model…", "  ")

    def child(self, e: dict[str, Any]) -> None:
        """One line per notable event of a delegated run, indented under the parent."""
        who = f"    ↳ [magenta]{esc(self.agents.get(e['run_id'], e['run_id']))}[/]"
        if e["kind"] == "run.started":
            self.console.print(f"{who} takes: {esc(short(e['goal'], 90))}")
        elif e["kind"] == "step.finished":
            st = e["status"]
            err = esc(short(f": {e['error']}", 120)) if e.get("error") else ""
            self.console.print(
                f"{who} " + styled(st, f"{MARK.get(st, '?')} {esc(e['action'])}{err}")
            )
        elif e["kind"] == "run.finished":
            self.console.print(f"{who} finished: {esc(e['status'])}")


def print_outcome(console: Console, outcome: Outcome) -> None:
    status = outcome.status.value
    console.rule(styled(status, status.upper()))
    console.print(esc(outcome.summary))
    if outcome.answer:
        console.print(f"[bold]Answer[/]: {esc(outcome.answer)}")
    if outcome.routing:
        console.print(f"[dim]Routed to {esc(outcome.agent)}: {esc(outcome.routing)}[/]")
    if outcome.steps:
        _print_steps(console, outcome)
    if outcome.deliverables:
        console.print("[bold]Deliverables[/]: " + esc(", ".join(outcome.deliverables)))
    for gap in outcome.gaps:
        console.print(f"[yellow]Missing[/] {esc(gap.kind.value)}: {esc(gap.what)} — {esc(gap.why)}")
    u = outcome.usage
    console.print(
        f"[dim]{u.model_requests} model requests, {u.input_tokens} tokens in, "
        f"{u.output_tokens} out, {u.wall_seconds:.2f} s; overhead "
        f"{u.overhead_wall_seconds:.2f} s wall, {u.overhead_cpu_seconds:.2f} s CPU "
        "(outside the model and the actions)[/]"
    )


def _print_steps(console: Console, outcome: Outcome) -> None:
    """A table of the steps; on a narrow terminal, where its columns would be a few
    letters wide, one line per step instead."""
    rows = [
        (s.id, s.action, s.status.value, short(s.error or s.output or "", 100))
        for s in outcome.steps
    ]
    if console.width < NARROW:
        for step, action, status, result in rows:
            mark = styled(status, f"{MARK.get(status, '?')} {esc(step)}")
            console.print(f"  {mark} {esc(action)} {styled(status, status)}: {esc(result)}")
        return
    table = Table(show_lines=False, box=None, pad_edge=False)
    for col in ("step", "action", "status", "result"):
        table.add_column(col)
    for step, action, status, result in rows:
        table.add_row(esc(step), esc(action), styled(status, status), esc(result))
    console.print(table)


def run_tree(run: dict[str, Any], load: Any) -> Tree:
    """The delegation tree of a stored run; ``load(id)`` returns a child run."""
    tree = Tree(
        f"{styled(run['status'], esc(run['status']))} {esc(run['id'])} "
        f"[bold]{esc(run['agent'])}[/]: {esc(short(run['goal'], 80))}"
    )
    for child in run.get("children", []):
        full = load(child["id"])
        if full is not None:
            tree.add(run_tree(full, load))
    return tree
