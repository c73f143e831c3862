"""The one way the CLI prints.

Every string that did not come from OpenLAM's own source code — goals, tool output,
model text, error messages, file paths — is escaped with :func:`esc` before it is put
into a rich markup string (rich reads ``[/]`` as markup and crashes, and drops
``[search]`` silently). When the output is not a terminal nothing is hard-wrapped, so
pipes, logs and tests see each message on one line whatever the width.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape

NOT_A_TERMINAL_WIDTH = 4096  # wide enough that nothing wraps; tables size to content


def esc(value: Any) -> str:
    """``value`` as text that rich prints literally inside a markup string."""
    return escape(value if isinstance(value, str) else str(value))


def console(*, stderr: bool = False) -> Console:
    """A console for the CLI: no syntax highlighting, no wrapping off a terminal."""
    probe = Console(stderr=stderr)
    if probe.is_terminal:
        return Console(stderr=stderr, highlight=False)
    return Console(stderr=stderr, highlight=False, soft_wrap=True, width=NOT_A_TERMINAL_WIDTH)
