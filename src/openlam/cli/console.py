"""The one way the CLI prints.

Every string that did not come from OpenLAM's own source code — goals, tool output,
model text, error messages, file paths — is escaped with :func:`esc` before it is put
into a rich markup string (rich reads ``[/]`` as markup and crashes, and drops
``[search]`` silently). Emoji codes are off too, so ``:thumbs_up:`` in a goal stays text.

Characters a terminal acts on instead of showing — the escape sequences of a tool's
output or a hostile goal (colours, cursor moves, clearing the screen, a window title, a
write to the clipboard), carriage returns, bells, bidirectional overrides — are printed
as visible escapes (``\x1b``) by every path: :func:`printable` is applied to each string
the console renders, each table cell, error messages and log lines. Only a line break and
a tab pass through.

Tables go through :func:`print_table`: their cells are never read as markup, ids are
never cut, and a terminal too narrow for the columns gets one short record per row.

On a terminal rich wraps to the terminal's width. Off a terminal (pipes, logs, tests)
nothing is hard-wrapped, whatever ``COLUMNS`` says: a message stays on one line, a table
is as wide as its content, and a rule is :data:`RULE_WIDTH` characters.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from rich.align import AlignMethod
from rich.cells import cell_len
from rich.console import Console, JustifyMethod
from rich.markup import escape
from rich.rule import Rule
from rich.style import Style
from rich.table import Table
from rich.text import Text, TextType

# Off a terminal the console is this wide so that nothing wraps; only renderables that
# fill the width (rules) are bounded, by RULE_WIDTH.
UNWRAPPED_WIDTH = 10_000
RULE_WIDTH = 72
SQUEEZED = 8  # a column narrower than this (or its header) is too squeezed to read


# C0 controls but tab and line feed, DEL, C1 controls (a lone \x9b starts a sequence on
# some terminals), and the marks and overrides that reorder text as it is shown.
_UNPRINTABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """``text`` with every character a terminal would act on shown as its escape."""
    return _UNPRINTABLE.sub(_visible, text)


class PrintableFormatter(logging.Formatter):
    """Log lines as :func:`printable` text (a warning may quote a tool's output)."""

    def format(self, record: logging.LogRecord) -> str:
        return printable(super().format(record))


def esc(value: Any) -> str:
    """``value`` as text that rich prints literally inside a markup string.

    (rich doubles a trailing backslash so that a tag right after it still works; before
    plain text such a backslash shows twice — cosmetic, and the only exception.)
    """
    return escape(value if isinstance(value, str) else str(value))


class CliConsole(Console):
    """A rich console that prints every string as :func:`printable` text, and whose rules
    stay a modest width off a terminal."""

    def render_str(self, text: str, **options: Any) -> Text:
        return super().render_str(printable(text), **options)

    def on_broken_pipe(self) -> None:
        """The reader went away (``openlam run … | head -1``): print nothing more, but go
        on — rich's default raises SystemExit from inside the event loop, which stopped
        the run half done and printed asyncio's traceback."""
        quiet_closed_output(self.stderr)
        self.quiet = True

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


def quiet_closed_output(stderr: bool = False) -> None:
    """Point stdout (or stderr) at /dev/null: its reader has gone, and what is still
    written (buffered text, the exit's flush) must not fail."""
    stream = sys.stderr if stderr else sys.stdout
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, stream.fileno())
    os.close(devnull)


def console(*, stderr: bool = False) -> Console:
    """A console for the CLI: no highlighting or emoji, no wrapping off a terminal."""
    common: dict[str, Any] = {"stderr": stderr, "highlight": False, "emoji": False}
    if Console(stderr=stderr).is_terminal:
        return CliConsole(**common)
    return CliConsole(**common, soft_wrap=True, width=UNWRAPPED_WIDTH)


@dataclass(frozen=True)
class Column:
    """A column of :func:`print_table`. ``key``: an id people copy into the next command —
    printed whole, never cut or wrapped. ``style``: the style of a value (a status's
    colour), or None."""

    name: str
    key: bool = False
    justify: JustifyMethod = "left"
    style: Callable[[str], str | None] | None = None


def print_table(
    out: Console,
    columns: Sequence[Column | str],
    rows: Iterable[Sequence[Any]],
    *,
    title: str | None = None,
) -> None:
    """Rows of values printed as text, whatever they hold (a goal may contain ``[/]``).

    Where the columns would be squeezed to a few letters — a narrow terminal — each row is
    printed as a record instead: its key values on one line, then ``name: value`` lines.
    """
    cols = [c if isinstance(c, Column) else Column(c) for c in columns]
    cells = [["" if v is None else str(v) for v in row] for row in rows]
    if title:
        out.print(Text(printable(title), style="bold"))
    widths = [max([cell_len(c.name), *(cell_len(r[i]) for r in cells)]) for i, c in enumerate(cols)]
    needed = sum(
        w if c.key else min(w, max(SQUEEZED, cell_len(c.name)))
        for c, w in zip(cols, widths, strict=True)
    )
    if out.is_terminal and out.width < needed + 2 * (len(cols) - 1):
        _print_records(out, cols, cells)
        return
    table = Table(box=None, header_style="bold", pad_edge=False)
    for c, w in zip(cols, widths, strict=True):
        table.add_column(c.name, justify=c.justify, no_wrap=c.key, min_width=w if c.key else None)
    for row in cells:
        table.add_row(*(_cell(c, v) for c, v in zip(cols, row, strict=True)))
    out.print(table)


def _print_records(out: Console, cols: list[Column], cells: list[list[str]]) -> None:
    keys = [i for i, c in enumerate(cols) if c.key] or [0]
    for row in cells:
        head = Text("  ").join(_cell(cols[i], row[i]) for i in keys)
        out.print(head, overflow="fold")
        for i, c in enumerate(cols):
            if i not in keys and row[i]:
                out.print(Text.assemble(f"  {c.name}: ", _cell(c, row[i])), overflow="fold")


def _cell(column: Column, value: str) -> Text:
    return Text(printable(value), style=(column.style(value) or "") if column.style else "")
