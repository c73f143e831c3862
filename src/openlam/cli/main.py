"""Entry point of ``openlam``. Command modules import only typer at top level so that
``openlam --help`` stays fast; heavy imports happen inside the commands."""

from __future__ import annotations

import importlib
import sys

import typer

from openlam.errors import UserError

app = typer.Typer(name="openlam", no_args_is_help=True, add_completion=False,
                  pretty_exceptions_enable=False,
                  help="OpenLAM: a workforce of agents that plans, acts, verifies and reports.")

# (module, attribute): a typer app added as a group, or a function that registers commands.
COMMAND_MODULES = (
    "openlam.cli.run",
    "openlam.cli.runs",
    "openlam.cli.init",
    "openlam.cli.actions",
    "openlam.cli.secrets",
    "openlam.cli.mcp",
    "openlam.cli.openapi",
    "openlam.cli.agents",
    "openlam.cli.policy",
    "openlam.cli.approvals",
    "openlam.cli.audit",
    "openlam.cli.gaps",
    "openlam.cli.worker",
    "openlam.cli.schedule",
)


def _install() -> None:
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # a command group not built yet
                continue
            raise
        module.install(app)


def main() -> None:
    import logging
    import os

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    _install()
    try:
        app(standalone_mode=True)
    except UserError as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.secho("interrupted; a started run resumes on the next `openlam run`", err=True)
        sys.exit(130)
    except Exception as exc:
        if os.environ.get("OPENLAM_DEBUG"):
            raise
        typer.secho(f"internal error: {type(exc).__name__}: {exc}\n  this is a bug in OpenLAM; "
                    "set OPENLAM_DEBUG=1 to see the traceback and please report it",
                    fg="red", err=True)
        sys.exit(70)
