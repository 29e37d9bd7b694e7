"""What changed inside a DataFrame between two checkpoints, for the diff page.

Columns come cheaply from the manifests: a frame stored by the pandas serializer (never
one that was pickled) keeps each column in its own buffers, so a column whose chunk
digests are the same in both checkpoints is unchanged, without reading it. Only the
column labels are read (one small buffer, decoded by the pandas serializer, no pickle).
Where both frames are small (``ROWS`` rows and ``BYTES`` bytes each at most) they are read
with ``data_only`` and compared cell by cell, which tells the rows added, removed and
changed (the first ``SHOWN`` labels of each) and the columns whose values changed (a
column's bytes also change when rows are only appended).

Non-goals: frames inside containers, Series, and frames that share a group with other
variables (they are listed as changed, not looked into)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ..format import BlobReader, Group, Manifest, is_own
from ..format import ChunkSource as _ChunkSource

__all__ = ["BYTES", "ROWS", "SHOWN", "FrameChange", "frame_change"]

ROWS = 200_000  # rows of each frame at most for a cell-by-cell comparison
BYTES = 64 << 20  # stored bytes of each frame at most for it
SHOWN = 20  # row labels shown per kind of change


@dataclass
class FrameChange:
    """One frame's changes; ``rows_*`` are None when the frames were not compared."""

    name: str
    added: list[Any] = field(default_factory=list)
    removed: list[Any] = field(default_factory=list)
    changed: list[Any] = field(default_factory=list)  # columns whose bytes or values differ
    rows_added: tuple[int, list[Any]] | None = None  # (how many, the first labels)
    rows_removed: tuple[int, list[Any]] | None = None
    rows_changed: tuple[int, list[Any]] | None = None
    note: str = ""


def _frame_group(m: Manifest, name: str) -> Group | None:
    entry = next((e for e in m.entries if e.name == name), None)
    if entry is None or entry.group is None:
        return None
    g = next((g for g in m.groups if g.id == entry.group), None)
    if (g is None or g.names != (name,) or g.serializer.name != "pandas"
            or g.meta.get("kind") != "frame"):
        return None
    return g


def _refs(node: Any) -> Iterator[int]:
    """The buffer numbers (``"b"``) a node of the pandas serializer's meta uses."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "b" and type(v) is int:
                yield v
            else:
                yield from _refs(v)
    elif isinstance(node, list):
        for v in node:
            yield from _refs(v)


def _renumber(node: Any, new: dict[int, int]) -> Any:
    if isinstance(node, dict):
        return {k: new[v] if k == "b" and type(v) is int else _renumber(v, new)
                for k, v in node.items()}
    if isinstance(node, list):
        return [_renumber(v, new) for v in node]
    return node


def _labels(m: Manifest, g: Group, source: _ChunkSource) -> list[Any]:
    """The frame's column labels: only the buffers of its columns index are read."""
    from ..serializers._pandas import PandasSerializer

    node = g.meta["columns"]
    used = sorted(set(_refs(node)))
    reader = BlobReader(source, m.blobs, m.digest, own=is_own(m))
    buffers = [reader.read(g.blobs[b]) for b in used]
    index: Any = PandasSerializer().load(
        {"kind": "index", "index": _renumber(node, {b: i for i, b in enumerate(used)})},
        buffers)
    return list(index)


def _columns(m: Manifest, g: Group, source: _ChunkSource) -> dict[Any, tuple[object, ...]]:
    """Column label -> what identifies its content (its description and chunk digests)."""
    labels, data = _labels(m, g, source), g.meta.get("data")
    if not isinstance(data, list) or len(data) != len(labels) or len(set(map(
            _key, labels))) != len(labels):
        raise ValueError("columns that cannot be told apart")
    out: dict[Any, tuple[object, ...]] = {}
    for label, node in zip(labels, data):
        digests = tuple(c.digest for b in _refs(node) for c in m.blobs[g.blobs[b]].chunks)
        out[label] = (repr(_renumber(node, {b: 0 for b in _refs(node)})), digests)
    return out


def _key(label: Any) -> object:
    try:
        hash(label)
        return label
    except TypeError:
        return repr(label)


def frame_change(name: str, ma: Manifest, mb: Manifest, sa: _ChunkSource, sb: _ChunkSource,
                 snapshots: tuple[Any, Any]) -> FrameChange | None:
    """What changed in frame ``name`` from ``ma`` to ``mb`` (None when it is not a frame
    stored by the pandas serializer in both)."""
    ga, gb = _frame_group(ma, name), _frame_group(mb, name)
    if ga is None or gb is None:
        return None
    change = FrameChange(name)
    try:
        ca, cb = _columns(ma, ga, sa), _columns(mb, gb, sb)
    except (ValueError, KeyError, TypeError) as why:
        change.note = f"columns not compared: {why}"
        return change
    change.added = [c for c in cb if c not in ca]
    change.removed = [c for c in ca if c not in cb]
    change.changed = [c for c in ca if c in cb and ca[c] != cb[c]]
    size = max(sum(m.blobs[b].stored for b in g.blobs) for m, g in ((ma, ga), (mb, gb)))
    if size > BYTES:
        change.note = "rows not compared: the frames are large"
        return change
    try:
        a, b = snapshots[0][name], snapshots[1][name]
    except Exception as why:  # noqa: BLE001 - shown as a note; the diff table stands
        change.note = f"rows not compared: {type(why).__name__}"
        return change
    _rows(change, a, b, ca)
    return change


def _rows(change: FrameChange, a: Any, b: Any, ca: dict[Any, Any]) -> None:
    if max(len(a), len(b)) > ROWS:
        change.note = f"rows not compared: more than {ROWS} rows"
        return
    if not (a.index.is_unique and b.index.is_unique):
        change.note = "rows not compared: the row labels repeat"
        return
    added, removed = b.index.difference(a.index, sort=False), a.index.difference(
        b.index, sort=False)
    common = a.index.intersection(b.index, sort=False)
    cols = [c for c in b.columns if c in ca]
    x, y = a.loc[common, cols], b.loc[common, cols]
    try:
        differ = (x != y) & ~(x.isna() & y.isna())
    except (TypeError, ValueError):
        x, y = x.astype(object), y.astype(object)
        differ = (x != y) & ~(x.isna() & y.isna())
    rows = common[differ.any(axis=1).to_numpy()]
    valued = {c for c in cols if bool(differ[c].any()) or x[c].dtype != y[c].dtype}
    # a column changed when a shared row's value did (not only because rows were appended)
    change.changed = [c for c in change.changed if c in valued]
    change.rows_added = (len(added), list(added[:SHOWN]))
    change.rows_removed = (len(removed), list(removed[:SHOWN]))
    change.rows_changed = (len(rows), list(rows[:SHOWN]))
