"""The one way the CLI prints.

Every string that did not come from OpenLAM's own source code — goals, tool output,
model text, error messages, file paths — is escaped with :func:`esc` before it is put
into a rich markup string (rich reads ``[/]`` as markup and crashes, and drops
``[search]`` silently). Emoji codes are off too, so ``:thumbs_up:`` in a goal stays text.

On a terminal rich wraps to the terminal's width. Off a terminal (pipes, logs, tests)
nothing is hard-wrapped, whatever ``COLUMNS`` says: a message stays on one line, a table
is as wide as its content, and a rule is :data:`RULE_WIDTH` characters.
"""

from __future__ import annotations

from typing import Any

from rich.align import AlignMethod
from rich.console import Console
from rich.markup import escape
from rich.rule import Rule
from rich.style import Style
from rich.text import TextType

# Off a terminal the console is this wide so that nothing wraps; only renderables that
# fill the width (rules) are bounded, by RULE_WIDTH.
UNWRAPPED_WIDTH = 10_000
RULE_WIDTH = 72


def esc(value: Any) -> str:
    """``value`` as text that rich prints literally inside a markup string.

    (rich doubles a trailing backslash so that a tag right after it still works; before
    plain text such a backslash shows twice — cosmetic, and the only exception.)
    """
    return escape(value if isinstance(value, str) else str(value))


class CliConsole(Console):
    """A rich console whose rules stay a modest width off a terminal."""

    def rule(
        self,
        title: TextType = "",
        *,
        characters: str = "─",
        style: str | Style = "rule.line",
        align: AlignMethod = "center",
    ) -> None:
        line = Rule(title, characters=characters, style=style, align=align)
        self.print(line, width=None if self.is_terminal else min(self.width, RULE_WIDTH))


def console(*, stderr: bool = False) -> Console:
    """A console for the CLI: no highlighting or emoji, no wrapping off a terminal."""
    common: dict[str, Any] = {"stderr": stderr, "highlight": False, "emoji": False}
    if Console(stderr=stderr).is_terminal:
        return CliConsole(**common)
    return CliConsole(**common, soft_wrap=True, width=UNWRAPPED_WIDTH)
