"""``openlam eval list|run|show|compare``: measure the workforce on suites of tasks whose
end state is checked (see docs/eval.md)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated, Any

import typer

eval_app = typer.Typer(help="Evaluate a model configuration on task suites.", no_args_is_help=True)
Workspace = Annotated[Path | None, typer.Option(help="Workspace directory (default: cwd).")]
Json = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def install(app: typer.Typer) -> None:
    app.add_typer(eval_app, name="eval")


def _store(workspace: Path | None) -> Any:
    from openlam.config import load_settings
    from openlam.learning.evals.results import EvalStore

    return EvalStore(load_settings(workspace).app_database_url)


def _out() -> Any:
    from openlam.cli.console import console

    return console()


@eval_app.command("list")
def list_suites(json_output: Json = False) -> None:
    """Installed suites: tasks per split, or why a suite cannot run here."""
    from openlam.cli.console import esc
    from openlam.learning.evals.suite import load_suites

    rows = []
    for name, suite in sorted(load_suites().items()):
        reason = suite.unavailable()
        tasks = [] if reason else suite.tasks()
        rows.append(
            {
                "suite": name,
                "description": suite.description,
                "dev": sum(t.split == "dev" for t in tasks),
                "heldout": sum(t.split == "heldout" for t in tasks),
                "unavailable": reason,
            }
        )
    if json_output:
        typer.echo(json.dumps(rows, indent=2))
        return
    c = _out()
    for r in rows:
        if r["unavailable"]:
            c.print(f"[bold]{esc(r['suite'])}[/] [yellow]unavailable[/]: {esc(r['unavailable'])}")
        else:
            c.print(
                f"[bold]{esc(r['suite'])}[/] {r['dev']} dev + {r['heldout']} held-out "
                f"tasks — {esc(r['description'])}"
            )


@eval_app.command("run")
def run(
    suite: Annotated[str, typer.Argument(help="Suite name (`openlam eval list`).")],
    model: Annotated[
        str | None,
        typer.Option(
            help="Model spec (default: the workspace's); eval:oracle and eval:negative "
            "are the control models."
        ),
    ] = None,
    agent: Annotated[
        str | None,
        typer.Option(help="Catalog agent to run the tasks as (default: the general operator)."),
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="First N tasks.")] = None,
    split: Annotated[str | None, typer.Option(help="dev | heldout (default: both).")] = None,
    deny: Annotated[
        bool,
        typer.Option(
            "--deny", help="The stand-in person denies every approval (default: approves)."
        ),
    ] = False,
    workspace: Workspace = None,
    json_output: Json = False,
) -> None:
    """Run a suite's tasks and score each on its real end state."""
    from openlam.cli.console import esc
    from openlam.config import load_settings
    from openlam.learning.evals.controls import CONTROLS, register_controls
    from openlam.learning.evals.harness import EvalOptions, run_suite
    from openlam.learning.evals.suite import get_suite
    from openlam.models.resolve import choose_model

    settings = load_settings(workspace)
    chosen = get_suite(suite)
    if model in CONTROLS:
        register_controls({}, {})  # known by name from now on; plans come per task
    spec = choose_model(settings, model).spec
    options = EvalOptions(
        model=spec, agent=agent, split=split, limit=limit, approvals="deny" if deny else "approve"
    )
    chosen.select(split, limit)  # a bad split is refused before anything starts
    store = _store(workspace)
    c = _out()

    def progress(score: Any) -> None:
        if not json_output:
            mark = "[green]done[/]" if score.goal_done else "[red]not done[/]"
            c.print(f"  {esc(score.task_id)} ({score.split}): {mark} — {esc(score.detail)}")

    if not json_output:
        c.print(
            f"Evaluating [bold]{esc(spec)}[/] on {esc(suite)}" + (f" ({split})" if split else "")
        )
    eval_id = asyncio.run(run_suite(chosen, options, store, base=settings, on_task=progress))
    _show(store.get(eval_id), json_output)


@eval_app.command("show")
def show(
    ident: Annotated[
        str | None, typer.Argument(help="Evaluation id or prefix (none: list them).")
    ] = None,
    workspace: Workspace = None,
    json_output: Json = False,
) -> None:
    """One evaluation's per-task scores, or the list of evaluations."""
    from openlam.cli.console import esc

    store = _store(workspace)
    if ident is not None:
        _show(store.get(ident), json_output)
        return
    rows = store.list()
    if json_output:
        typer.echo(json.dumps(rows, indent=2, default=str))
        return
    c = _out()
    if not rows:
        c.print("No evaluations yet: `openlam eval run openlam --model eval:oracle`")
    for r in rows:
        c.print(
            esc(
                f"{r['id']} {r['suite']} {r['model']} {r['split'] or 'all'}: "
                f"{_rate(r['summary'].get('goal_done'))} goal done over "
                f"{r['summary'].get('tasks', 0)} tasks ({r['status']})"
            )
        )


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _show(found: dict[str, Any], json_output: bool) -> None:
    from dataclasses import asdict

    from openlam.cli.console import Column, esc, print_table

    if json_output:
        typer.echo(
            json.dumps(
                {
                    **{k: v for k, v in found.items() if k != "scores"},
                    "scores": [asdict(s) for s in found["scores"]],
                },
                indent=2,
                default=str,
            )
        )
        return
    c = _out()
    numbers = [Column(col, justify="right") for col in ("corrections", "requests", "tokens")]
    print_table(
        c,
        [
            Column("task", key=True),
            "split",
            "goal done",
            "deliverable",
            "run",
            *numbers,
            Column("wall s", justify="right"),
        ],
        (
            (
                s.task_id,
                s.split,
                "yes" if s.goal_done else "no",
                "yes" if s.deliverable_correct else "no",
                s.run_status,
                s.corrections + s.questions,
                s.model_requests,
                s.input_tokens + s.output_tokens,
                f"{s.wall_seconds:.2f}",
            )
            for s in found["scores"]
        ),
    )
    m = found["summary"]
    agent = f" as {esc(found['agent'])}" if found.get("agent") else ""
    c.print(
        f"[bold]{found['id']}[/] {esc(found['suite'])} · model {esc(found['model'])}{agent}: "
        f"goal done {_rate(m.get('goal_done'))} ({m.get('goal_done_count', 0)}/"
        f"{m.get('tasks', 0)}), deliverable correct {_rate(m.get('deliverable_correct'))}, "
        f"needed correction {_rate(m.get('needed_correction'))}"
        + (
            f", attack success {_rate(m['attack_success'])}"
            if m.get("attack_success") is not None
            else ""
        )
        + f"; {m.get('model_requests', 0)} model requests, {m.get('tokens', 0)} tokens, "
        f"{m.get('wall_seconds', 0)} s"
    )


@eval_app.command("compare")
def compare(
    a: Annotated[str, typer.Argument(help="First evaluation id.")],
    b: Annotated[str, typer.Argument(help="Second evaluation id.")],
    workspace: Workspace = None,
    json_output: Json = False,
) -> None:
    """Per-task table of two evaluations and the significance of their difference."""
    from openlam.cli.console import Column, esc, print_table
    from openlam.learning.evals.compare import compare_evals

    store = _store(workspace)
    result = compare_evals(store.get(a), store.get(b))
    if json_output:
        typer.echo(json.dumps(result, indent=2))
        return
    c = _out()
    print_table(
        c,
        [Column("task", key=True), result["a"]["id"], result["b"]["id"]],
        ((row["task"], _mark(row["a"]), _mark(row["b"])) for row in result["tasks"]),
    )
    c.print(
        f"goal done: {esc(result['a']['id'])} {_rate(result['a']['rate'])} vs "
        f"{esc(result['b']['id'])} {_rate(result['b']['rate'])}; {esc(result['test'])} "
        f"p = {result['p_value']:.4g} — {esc(result['verdict'])}"
    )


def _mark(value: bool | None) -> str:
    return "-" if value is None else ("done" if value else "not done")
