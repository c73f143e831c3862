"""Entry point of ``openlam``. Command modules import only typer at top level so that
``openlam --help`` stays fast; heavy imports happen inside the commands.

:func:`main` is the one place that turns what went wrong into what the user reads:
usage errors and :class:`UserError` as plain lines (never wrapped, never read as markup),
Ctrl-C as one line, anything else as one "internal error" line — never a traceback
unless ``OPENLAM_DEBUG`` is set.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import typer

from openlam.errors import UserError

app = typer.Typer(
    name="openlam",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="OpenLAM: a workforce of agents that plans, acts, verifies and reports.",
)

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
    "openlam.cli.learn",
    "openlam.cli.serve",
    "openlam.cli.tokens",
    "openlam.cli.eval",
    "openlam.cli.model",
    "openlam.cli.federate",
)

INTERRUPTED = 130  # the shell's code for a process ended by SIGINT
DEFAULT_INTERRUPTED_HINT = "any run already started is saved and resumes on the next `openlam run`"
_interrupted_hint = DEFAULT_INTERRUPTED_HINT


def set_interrupted_hint(text: str | None) -> None:
    """What the line printed on Ctrl-C says after "interrupted; ". A command that starts a
    run sets it to name the run and how to resume it; ``None`` restores the default."""
    global _interrupted_hint
    _interrupted_hint = text or DEFAULT_INTERRUPTED_HINT


def check_text(value: str, what: str) -> str:
    """``value``, unless it holds bytes that are not valid UTF-8.

    Python decodes such bytes on the command line as lone surrogates, which crash later,
    when the text is printed or stored; refuse them at the door instead.
    """
    for i, char in enumerate(value):
        if "\ud800" <= char <= "\udfff":
            raise UserError(
                f"{what} contains bytes that are not valid UTF-8 at position "
                f"{len(value[:i].encode())}: {_readable(value)}",
                "pass the text in UTF-8 (check the encoding of your terminal or script)",
            )
    return value


def _readable(value: str) -> str:
    """``value`` with its undecodable bytes shown as ``\\xNN``."""
    try:
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a surrogate that did not come from a byte
        return ascii(value)


def _install() -> None:
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # a command group not built yet
                continue
            raise
        module.install(app)


def _configure_logging() -> None:
    import logging

    from openlam.cli.console import PrintableFormatter

    handler = logging.StreamHandler()
    handler.setFormatter(PrintableFormatter("%(levelname)s: %(message)s"))
    logging.basicConfig(level=logging.WARNING, handlers=[handler])
    logging.getLogger("dbos").addFilter(_dbos_said)


def _dbos_said(record: Any) -> bool:
    """DBOS's log lines worth a CLI user's screen: not its warning for every task that
    Ctrl-C or a step timeout cancelled (quoting the whole prompt or arguments), and its
    errors without their tracebacks (OPENLAM_DEBUG=1 keeps them): what went wrong
    reaches the user as OpenLAM's own error, with its fix."""
    import os

    if record.getMessage().startswith("Asyncio task cancelled"):
        return False
    if not os.environ.get("OPENLAM_DEBUG"):
        record.exc_info = record.exc_text = None
    return True


def _interrupted() -> None:
    """Ctrl-C: one line, and nothing after it from threads or libraries shutting down."""
    import logging
    import threading

    logging.disable(logging.CRITICAL)
    threading.excepthook = lambda _args: None
    sys.unraisablehook = lambda _args: None
    typer.secho(f"interrupted; {_interrupted_hint}", fg="yellow", err=True)


def _path_fix(exc: OSError) -> str:
    """What to do about a file a command could not open, by why."""
    if isinstance(exc, IsADirectoryError):
        return "give the path of a file, not a folder"
    if isinstance(exc, PermissionError):
        return "choose a path you may write (or read), or change the file's permissions"
    return "check the path (its folder must exist)"


def main() -> None:
    import os

    from openlam.cli.console import console, printable, quiet_closed_output
    from openlam.config import refuse_missing_workspaces
    from openlam.errors import storage_trouble

    _configure_logging()
    refuse_missing_workspaces()
    _install()
    if not console(stderr=True).is_terminal:
        app.rich_markup_mode = None  # click's plain usage errors: rich's panel wraps at 80
    try:
        for i, arg in enumerate(sys.argv[1:], start=1):
            check_text(arg, f"command-line argument {i}")
        app(standalone_mode=True)  # prints usage errors itself and exits
    except SystemExit as exc:
        if exc.code == INTERRUPTED:  # typer turns KeyboardInterrupt into exit code 130
            _interrupted()
        raise
    except UserError as exc:
        typer.secho(f"error: {printable(str(exc))}", fg="red", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        _interrupted()
        sys.exit(INTERRUPTED)
    except BrokenPipeError:  # `openlam … | head`: the reader had what it wanted
        quiet_closed_output()
        sys.exit(0)
    except Exception as exc:
        if os.environ.get("OPENLAM_DEBUG"):
            raise
        trouble = storage_trouble(exc)
        if trouble is not None:
            typer.secho(f"error: {printable(str(trouble))}", fg="red", err=True)
            sys.exit(2)
        if isinstance(exc, OSError) and exc.filename is not None:  # `--out /tmp`, say
            typer.secho(
                f"error: {printable(str(exc.filename))}: {exc.strerror}\n  fix: {_path_fix(exc)}",
                fg="red",
                err=True,
            )
            sys.exit(2)
        typer.secho(
            f"internal error: {type(exc).__name__}: {printable(str(exc))}\n  this is a bug in "
            "OpenLAM; set OPENLAM_DEBUG=1 to see the traceback and please report it",
            fg="red",
            err=True,
        )
        sys.exit(70)
