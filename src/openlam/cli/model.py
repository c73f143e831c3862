"""``openlam model list|pull|create|promote``: local models through Ollama, and the
promotion gate that changes the workspace's default model (docs/eval.md)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated, Any

import typer

model_app = typer.Typer(
    help="Local models (Ollama) and promoting a model configuration.", no_args_is_help=True
)
Workspace = Annotated[Path | None, typer.Option(help="Workspace directory (default: cwd).")]
Json = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def install(app: typer.Typer) -> None:
    app.add_typer(model_app, name="model")


def _admin(workspace: Path | None) -> Any:
    from openlam.config import load_settings
    from openlam.models.packaging import OllamaAdmin

    return OllamaAdmin(load_settings(workspace).ollama_url)


def _out() -> Any:
    from openlam.cli.console import console

    return console()


@model_app.command("list")
def list_models(workspace: Workspace = None, json_output: Json = False) -> None:
    """The models the local Ollama has."""
    from openlam.cli.console import esc

    models = _admin(workspace).models()
    if json_output:
        typer.echo(json.dumps(models, indent=2))
        return
    c = _out()
    if not models:
        c.print("Ollama has no models yet: `openlam model pull qwen3:8b`")
    for m in models:
        details = m.get("details") or {}
        size = f"{m['size'] / 1e9:.1f} GB" if isinstance(m.get("size"), int | float) else ""
        c.print(
            f"ollama:{esc(m.get('name', '?'))}  {esc(details.get('parameter_size', ''))} {size}"
        )


@model_app.command("pull")
def pull(
    name: Annotated[str, typer.Argument(help="Model to fetch, e.g. qwen3:8b.")],
    workspace: Workspace = None,
) -> None:
    """Ask Ollama to fetch a base model, showing its progress."""
    from openlam.cli.console import esc
    from openlam.models.packaging import progress_line

    c = _out()
    last = ""
    for record in _admin(workspace).pull(name):
        line = progress_line(record)
        if line != last:
            c.print(esc(line))
            last = line
    c.print(f"pulled {esc(name)}: use it with --model ollama:{esc(name)}")


@model_app.command("create")
def create(
    base: Annotated[str, typer.Argument(help="A model Ollama has, e.g. qwen3:8b.")],
    name: Annotated[str, typer.Option(help="Name of the new model.")] = "openlam",
    workspace: Workspace = None,
) -> None:
    """Register a model with OpenLAM's planning prompt and parameters (`ollama:openlam`)."""
    from openlam.cli.console import esc
    from openlam.config import load_settings
    from openlam.models.packaging import write_modelfile

    settings = load_settings(workspace)
    admin = _admin(workspace)
    admin.create(base, name)
    path = write_modelfile(settings.state_dir, base)
    _out().print(
        f"created {esc(name)} from {esc(base)} (Modelfile: {esc(str(path))}); "
        f"use it with --model ollama:{esc(name)}"
    )


@model_app.command("promote")
def promote(
    candidate: Annotated[str, typer.Argument(help="Model spec to promote.")],
    suite: Annotated[
        list[str] | None,
        typer.Option(help="Suite whose held-out split decides (repeatable; default openlam)."),
    ] = None,
    current: Annotated[
        str | None, typer.Option(help="The configuration to beat (default: the workspace's model).")
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="First N held-out tasks.")] = None,
    workspace: Workspace = None,
    json_output: Json = False,
) -> None:
    """Run the held-out split for the current and the candidate model; make the candidate
    the workspace's default only if it is not worse (decision and score sheets audited)."""
    from dataclasses import asdict

    from openlam.cli.console import esc
    from openlam.config import load_settings
    from openlam.learning.evals.controls import CONTROLS, register_controls
    from openlam.learning.gate import promote as run_gate

    if candidate in CONTROLS or current in CONTROLS:
        register_controls({}, {})
    settings = load_settings(workspace)
    decision = asyncio.run(
        run_gate(
            settings, candidate, current=current, suites=tuple(suite or ("openlam",)), limit=limit
        )
    )
    if json_output:
        typer.echo(json.dumps(asdict(decision), indent=2, default=str))
    else:
        c = _out()
        verdict = "[green]promoted[/]" if decision.promoted else "[red]refused[/]"
        c.print(f"{esc(decision.candidate)} vs {esc(decision.current)}: {verdict}")
        for name, sheets in decision.sheets.items():
            for role in ("current", "candidate"):
                s = sheets[role]["summary"]
                c.print(
                    f"  {esc(name)} {role} {esc(sheets[role]['model'])}: goal done "
                    f"{s['goal_done']:.0%} ({s['goal_done_count']}/{s['tasks']}) "
                    + esc(f"[{sheets[role]['eval_id']}]")
                )
        for reason in decision.reasons:
            c.print(f"  {esc(reason)}")
        c.print("  recorded in the audit log (`openlam audit export`)")
    if not decision.promoted:
        raise typer.Exit(1)
