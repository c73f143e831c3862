"""``openlam policy check|explain``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

policy_app = typer.Typer(
    help="Validate governance policies and explain decisions.", no_args_is_help=True
)
Workspace = Annotated[Path | None, typer.Option(help="Workspace directory (default: cwd).")]


def install(app: typer.Typer) -> None:
    app.add_typer(policy_app, name="policy")


@policy_app.command("check")
def check(
    files: Annotated[
        list[Path] | None,
        typer.Argument(help="Policy files or directories (default: the workspace's policies)."),
    ] = None,
    workspace: Workspace = None,
) -> None:
    """Validate policy files; every problem is reported with its file and line."""
    from openlam.cli.console import console as make_console
    from openlam.cli.console import esc
    from openlam.config import load_settings
    from openlam.governance.api import check_policies
    from openlam.governance.policy import PolicyError

    console = make_console()
    try:
        policies = check_policies(load_settings(workspace), files)
    except PolicyError as exc:
        for problem in exc.problems:
            console.print(f"[red]{esc(problem)}[/]")
        console.print(f"{len(exc.problems)} problem(s)")
        raise typer.Exit(1) from None
    if not policies.files:
        console.print(
            "No policy files; the built-in defaults apply (read and write allowed; "
            "external, financial and destructive need approval)."
        )
        return
    console.print(
        f"[green]OK[/]: {len(policies.rules)} rule(s) in {len(policies.files)} "
        f"file(s): {esc(', '.join(policies.files))}"
    )


@policy_app.command("explain")
def explain(
    run_id: Annotated[str, typer.Argument(help="Run id.")],
    step_id: Annotated[str, typer.Argument(help="Step id, e.g. s2.")],
    workspace: Workspace = None,
    json_output: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Show the rule that decided a step, why, and what happened next."""
    import json

    from openlam.cli.console import console as make_console
    from openlam.cli.console import esc
    from openlam.config import load_settings
    from openlam.governance.api import explain as explain_step

    info = explain_step(load_settings(workspace), run_id, step_id)
    if json_output:
        typer.echo(json.dumps(info, indent=2, default=str))
        return
    body = info["recorded"]["body"]
    console = make_console()
    console.print(
        f"Step {esc(step_id)} of run {esc(run_id)}: [bold]{esc(body.get('action'))}[/] "
        f"(risk {esc(body.get('risk'))}, plan version {esc(body.get('plan_version'))})"
    )
    console.print(
        f"Decision: [bold]{esc(body.get('effect'))}[/] by rule [bold]{esc(body.get('rule_id'))}[/]"
        f" ({esc(body.get('source') or 'built-in')})"
    )
    console.print(f"Why: {esc(body.get('reason'))}")
    if body.get("guardrail"):
        console.print(
            f"Guardrail: {esc(body['guardrail'])} — the deciding rule would have allowed it"
        )
    console.print(f"Provenance: {esc(body.get('provenance_text'))}")
    console.print(f"Arguments: {esc(json.dumps(body.get('args'), default=str)[:500])}")
    rule = info["rule_now"]
    if rule is None:
        console.print("[dim]The rule is no longer in the current policy files.[/]")
    for rec in info["then"]:
        b = rec["body"]
        detail = b.get("status") or b.get("approval") or ""
        by = f"by {rec['actor']}" if rec["actor"] else ""
        console.print(
            esc(f"  then {rec['kind']}: {detail} {by}")
            + (f" — {esc(b['comment'])}" if b.get("comment") else "")
        )
