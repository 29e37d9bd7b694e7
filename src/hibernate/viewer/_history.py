"""A store's history page (the graph of ``_graph``, a table of the same checkpoints with
their diff links, and a form to diff any two), one page of checkpoints at a time, and the
diff page. Every text from a record goes through ``esc``.

Non-goals: reading any chunk (only the checkpoint records are read here)."""

from __future__ import annotations

import html
from collections.abc import Sequence

from .._reports import human
from ..checkpoints import Checkpoint, Diff
from ._framediff import FrameChange
from ._graph import graph_svg, layout
from ._preview import esc, grid
from ._render import href

__all__ = ["HISTORY_PAGE", "diff_html", "timeline_html"]

HISTORY_PAGE = 100  # checkpoints per page


def timeline_html(checkpoints: Sequence[Checkpoint], head: str | None, base: str,
                  number: int = 0, size: int = HISTORY_PAGE) -> str:
    """Page ``number`` of a store's checkpoints, newest first: the graph, the table, and a
    form to diff two of them."""
    g = layout(checkpoints)
    pages = max(1, -(-len(g.rows) // size))
    number = min(max(number, 0), pages - 1)
    first = number * size
    shown = g.rows[first:first + size]
    rows = []
    for c in shown:
        mark = " (HEAD)" if c.id == head else ""
        link = f'<a href="{href(base, c=c.id)}">{esc(c.id, 20)}</a>{mark}'
        parent = (f'<a href="{href(base + "/diff", a=c.parent, b=c.id)}">diff with '
                  f"{esc(c.parent, 20)}</a>" if c.parent else "first")
        cells = [link, esc(c.time, 40), esc(c.message, 120), str(len(c.names)),
                 esc(human(c.bytes_total)), esc(human(c.bytes_written)), parent]
        rows.append("<tr>" + "".join(f"<td>{x}</td>" for x in cells) + "</tr>")
    head_row = "".join(f"<th>{h}</th>" for h in ("checkpoint", "time", "message", "names",
                                                  "size", "new bytes", "parent"))
    table = (f'<table class="timeline"><thead><tr>{head_row}</tr></thead>'
             f"<tbody>{''.join(rows)}</tbody></table>")
    tips = len(g.tips())
    n = len(g.rows)
    summary = (f"<p class=\"note\">{n} checkpoint{'' if n == 1 else 's'}, {tips} "
               f"{'branch' if tips == 1 else 'branches'}</p>")
    graph = f'<div class="graph">{graph_svg(g, head, base, first, size)}</div>'
    return (summary + graph + _pager(base, number, pages) + table
            + _diff_form(shown, base))


def _pager(base: str, number: int, pages: int) -> str:
    if pages == 1:
        return ""
    links = [f'<a href="{href(base, page=number - 1)}">newer</a>' if number else "",
             f"page {number + 1} of {pages}",
             f'<a href="{href(base, page=number + 1)}">older</a>' if number + 1 < pages else ""]
    return f"<p class=\"pager\">{' '.join(x for x in links if x)}</p>"


def _diff_form(checkpoints: Sequence[Checkpoint], base: str) -> str:
    if len(checkpoints) < 2:
        return ""

    def select(name: str, chosen: int) -> str:
        opts = "".join(f'<option value="{esc(c.id, 20)}"{" selected" if i == chosen else ""}>'
                       f"{esc(c.id, 20)} {esc(c.message, 40)}</option>"
                       for i, c in enumerate(checkpoints))
        return f'<select name="{name}">{opts}</select>'

    return (f'<form class="diff" method="get" action="{html.escape(base)}/diff">'
            f"<label>from {select('a', 1)}</label> <label>to {select('b', 0)}</label> "
            "<button type=\"submit\">diff</button></form>")


def diff_html(d: Diff, frames: Sequence[FrameChange] = ()) -> str:
    """The diff table, then what changed inside each DataFrame of ``frames``."""
    rows = [("added", n, "", human(d.sizes[n][1])) for n in d.added]
    rows += [("removed", n, human(d.sizes[n][0]), "") for n in d.removed]
    rows += [("changed", n, human(d.sizes[n][0]), human(d.sizes[n][1])) for n in d.changed]
    if not rows:
        return "<p class=\"note\">no differences</p>"
    return (grid(("change", "name", "size before", "size after"), rows, "diff")
            + "".join(_frame_html(f) for f in frames))


def _labels(labels: Sequence[object], total: int | None = None) -> str:
    shown = ", ".join(esc(x, 40) for x in labels) or "-"
    more = total - len(labels) if total is not None else 0
    return shown + (f" … ({more} more)" if more > 0 else "")


def _frame_html(f: FrameChange) -> str:
    compared = f.rows_changed is not None
    facts: list[tuple[str, str]] = [
        ("columns added", _labels(f.added)), ("columns removed", _labels(f.removed)),
        ("columns changed" if compared else "columns whose bytes differ", _labels(f.changed))]
    for what, rows in (("rows added", f.rows_added), ("rows removed", f.rows_removed),
                       ("rows changed", f.rows_changed)):
        if rows is not None:
            facts.append((f"{what} ({rows[0]})", _labels(rows[1], rows[0])))
    items = "".join(f'<dt>{k}</dt><dd class="{k.split(" (")[0].replace(" ", "-")}">{v}</dd>'
                    for k, v in facts)
    note = f'<p class="note">{esc(f.note, 200)}</p>' if f.note else ""
    return (f'<section class="frame-diff" data-name="{esc(f.name, 120)}">'
            f"<h3>inside the frame {esc(f.name, 120)}</h3>"
            f'<dl class="facts">{items}</dl>{note}</section>')
