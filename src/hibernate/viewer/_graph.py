"""A store's history as a graph: checkpoints (newest first) joined to their parents, one
lane per line of history, drawn as inline SVG on the server (no script, no ``style``
attribute: the look comes from classes in ``static/viewer.css``, as the CSP requires).

A store names no branches: a branch is a line of history that ends in a checkpoint no
other one has as its parent (a *tip*), and is labelled with that tip's id; a *fork* is a
checkpoint two lines grew from (a checkout of an older checkpoint, then a new one). HEAD,
the parent of the next checkpoint, is marked wherever it is.

Lanes are laid out over the whole history (cheap: the records are already read); a page
draws only its own rows and the edges that cross them. Every text from a record goes
through ``esc``.

Non-goals: merges (a checkpoint has one parent), zoom, and drawing on the client."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .._reports import human
from ..checkpoints import Checkpoint
from ._preview import esc
from ._render import href

__all__ = ["Layout", "graph_svg", "layout"]

ROW, LANE, PAD = 28, 18, 12  # pixels: row height, lane width, margins
TEXT = 90  # pixels after the last lane: where a row's text starts


@dataclass(frozen=True)
class Layout:
    """Where each checkpoint is drawn (row, lane), its children, and the tips (branches)."""

    rows: tuple[Checkpoint, ...]
    lane: dict[str, int]
    children: dict[str, tuple[str, ...]]
    lanes: int

    def tips(self) -> list[str]:
        return [c.id for c in self.rows if not self.children.get(c.id)]

    def forks(self) -> list[str]:
        return [c.id for c in self.rows if len(self.children.get(c.id, ())) > 1]


def layout(checkpoints: Sequence[Checkpoint]) -> Layout:
    """Lanes as ``git log --graph`` keeps them: a line of history holds its lane until its
    parent's row; a tip takes the first free lane; a fork frees its children's lanes."""
    rows = tuple(sorted(checkpoints, key=lambda c: c.time, reverse=True))
    known = {c.id for c in rows}
    children: dict[str, list[str]] = {}
    for c in rows:
        if c.parent in known:
            children.setdefault(c.parent, []).append(c.id)
    waiting: list[str | None] = []  # per lane: the id its line waits for
    lane: dict[str, int] = {}
    for c in rows:
        mine = [k for k, w in enumerate(waiting) if w == c.id]
        if mine:
            here = mine[0]
        elif None in waiting:
            here = waiting.index(None)
        else:
            here, waiting = len(waiting), [*waiting, None]
        for k in mine[1:]:
            waiting[k] = None
        waiting[here] = c.parent if c.parent in known else None
        lane[c.id] = here
    width = max(lane.values(), default=0) + 1
    return Layout(rows, lane, {k: tuple(v) for k, v in children.items()}, width)


def _x(lane: int) -> int:
    return PAD + lane * LANE


def _y(row: int, first: int) -> int:
    return PAD + (row - first) * ROW


def _edges(g: Layout, first: int, last: int, row_of: dict[str, int]) -> list[str]:
    """Paths from each child down its lane, then to its parent, that cross rows
    ``first..last`` (the rest is outside this page)."""
    out = []
    for parent, kids in g.children.items():
        p = row_of[parent]
        for kid in kids:
            c = row_of[kid]
            top, bottom = min(c, p), max(c, p)
            if bottom < first or top > last:
                continue
            xc, xp, yc, yp = _x(g.lane[kid]), _x(g.lane[parent]), _y(c, first), _y(p, first)
            bend = _y(max(p - 1, c), first)
            path = (f"M{xc} {yc}V{bend}L{xp} {yp}" if c < p else f"M{xc} {yc}L{xp} {yp}")
            out.append(f'<path class="edge lane{g.lane[kid] % 6}" d="{path}"/>')
    return out


def _node(g: Layout, c: Checkpoint, row: int, first: int, head: str | None,
          base: str) -> str:
    x, y = _x(g.lane[c.id]), _y(row, first)
    kids = len(g.children.get(c.id, ()))
    cls = " ".join(["node", f"lane{g.lane[c.id] % 6}"] + (["fork"] if kids > 1 else [])
                   + (["head"] if c.id == head else []))
    title = f"{esc(c.id, 20)}" + (f": a fork, {kids} lines of history" if kids > 1 else "")
    tags = []
    if c.id == head:
        tags.append('<tspan class="tag head">HEAD</tspan>')
    if not kids:
        tags.append(f'<tspan class="tag branch">⎇ {esc(c.id[:8], 8)}</tspan>')
    if kids > 1:
        tags.append(f'<tspan class="tag fork">fork ({kids})</tspan>')
    tx = _x(g.lanes - 1) + TEXT - 60
    texts = [(tx + 110, "time", esc(c.time[:19].replace("T", " "), 19)),
             (tx + 270, "size", esc(human(c.bytes_total), 20)),
             (tx + 350, "message", esc(c.message or "(no message)", 70) + " " + " ".join(tags))]
    label = (f'<a href="{href(base, c=c.id)}"><text class="cid" x="{tx}" y="{y + 4}">'
             f"{esc(c.id[:12], 12)}</text></a>"
             + "".join(f'<text class="{k}" x="{x_}" y="{y + 4}">{t}</text>'
                       for x_, k, t in texts))
    return (f'<g class="checkpoint" data-id="{esc(c.id, 20)}">'
            f'<circle class="{cls}" cx="{x}" cy="{y}" r="5"><title>{title}</title></circle>'
            f"{label}</g>")


def graph_svg(g: Layout, head: str | None, base: str, first: int = 0,
              count: int | None = None) -> str:
    """Rows ``first`` to ``first + count`` of the graph as an ``<svg>`` element; each
    checkpoint links to its session page under ``base``."""
    last = min(len(g.rows), first + (count if count is not None else len(g.rows))) - 1
    if last < first:
        return ""
    row_of = {c.id: i for i, c in enumerate(g.rows)}
    nodes = [_node(g, g.rows[i], i, first, head, base) for i in range(first, last + 1)]
    width = _x(g.lanes - 1) + TEXT + 760
    height = 2 * PAD + (last - first) * ROW
    return (f'<svg class="graph" xmlns="http://www.w3.org/2000/svg" width="{width}" '
            f'height="{height}" viewBox="0 0 {width} {height}" '
            f'aria-label="history graph">{"".join(_edges(g, first, last, row_of))}'
            f'{"".join(nodes)}</svg>')
