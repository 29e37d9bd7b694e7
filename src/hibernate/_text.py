"""The one output boundary: text from a file made safe for a terminal or a page, and the
tables every report, ``inspect``, ``log`` and ``diff`` print.

Tables are laid out by rich (widths, wrapping, alignment) with no colour and no markup:
every cell is a ``rich.text.Text`` of already sanitized text, so a name such as
``[bold]x`` or ``\\x1b[2K`` prints as characters, never as a style or an escape.
"""

from __future__ import annotations

import html
import io
import shutil
from collections.abc import Sequence
from typing import Any

__all__ = ["SanitizedStream", "clean", "html_table", "human", "sanitize", "table"]


def sanitize(text: object) -> str:
    """The one output sanitizer: text from a file, made safe for a terminal. Every
    character that is not printable (ESC, CR, BEL, OSC and clipboard sequences, bidi
    controls...) becomes '?'; only newlines and tabs stay."""
    return "".join(ch if ch.isprintable() or ch in "\n\t" else "?" for ch in str(text))


def clean(text: object, limit: int = 80) -> str:
    """Printable, one-line, bounded text (``sanitize``, and newlines become '?' too)."""
    s = sanitize(text).replace("\n", "?").replace("\t", " ")
    return s if len(s) <= limit else s[: limit - 1] + "…"


class SanitizedStream:
    """A text stream that passes everything written through ``sanitize`` (the CLI's stdout
    and stderr: every command's output goes through the one sanitizer)."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(sanitize(text))
        return len(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def width() -> int:
    """The terminal's width, or 160 columns where there is none (a pipe, a log, a kernel)."""
    return max(60, shutil.get_terminal_size((160, 24)).columns)


def _rich() -> tuple[Any, Any, Any, Any]:
    """rich's parts, imported the first time a table is printed. Importing rich draws from
    Python's global random generator, which is the user's (a session's next random number
    must not depend on whether a report was shown): its state is kept across the import."""
    import random

    state = random.getstate()
    try:
        from rich import box
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text
    finally:
        random.setstate(state)
    return box, Console, Table, Text


def table(headers: Sequence[str], rows: Sequence[Sequence[object]],
          right: Sequence[int] = ()) -> str:
    """A text table, every cell through ``clean``; columns in ``right`` (numbers, sizes)
    aligned right, the others left; long cells wrap to the terminal's width."""
    box, Console, Table, Text = _rich()
    grid = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, header_style="",
                 safe_box=True)
    for i, h in enumerate(headers):
        grid.add_column(Text(h), justify="right" if i in right else "left",
                        overflow="fold")
    for row in rows:
        grid.add_row(*(Text(clean(c)) for c in row))
    out = io.StringIO()
    Console(file=out, width=width(), color_system=None, force_terminal=False,
            force_jupyter=False, markup=False, emoji=False, highlight=False).print(grid)
    return "\n".join(line.rstrip() for line in out.getvalue().splitlines())


def html_table(headers: Sequence[str], rows: Sequence[Sequence[object]], title: str = "",
               right: Sequence[int] = ()) -> str:
    """An HTML table, every cell escaped; columns in ``right`` aligned right."""
    def cell(tag: str, i: int, text: object) -> str:
        align = ' style="text-align:right"' if i in right else ""
        return f"<{tag}{align}>{html.escape(str(text))}</{tag}>"

    head = "".join(cell("th", i, h) for i, h in enumerate(headers))
    body = "".join("<tr>" + "".join(cell("td", i, c) for i, c in enumerate(r)) + "</tr>"
                   for r in rows)
    cap = f"<caption>{html.escape(title)}</caption>" if title else ""
    return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
