"""An engine entry's page (``How.ENGINE``: data written by a distributed engine, such as a
Dask DataFrame saved as Parquet partitions): its record as the manifest holds it (engine,
form, format, rows, columns and dtypes, partitions with their sizes and digests), shown
without starting any engine or reading any partition. Every value goes through ``esc``.

Non-goals (for now): a preview of the first partition (it would read engine data beside
the file, digest-checked as ``engines/_dask.py`` does)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._reports import human
from ..format import Entry
from ._preview import COLUMNS, esc, grid

__all__ = ["PARTITIONS", "engine_html"]

PARTITIONS = 20  # partitions listed at most


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _partitions(parts: list[Any]) -> str:
    rows = []
    for p in parts[:PARTITIONS]:
        if not isinstance(p, Mapping):
            continue
        size = p.get("size")
        rows.append((p.get("path", "?"), p.get("rows", ""),
                     human(size) if isinstance(size, int) else "",
                     str(p.get("blake3", ""))[:16]))
    more = len(parts) - PARTITIONS
    note = f"<p class=\"note\">… {more} more partitions</p>" if more > 0 else ""
    return "<h3>partitions</h3>" + grid(("path", "rows", "size", "BLAKE3"), rows,
                                        "partitions") + note


def engine_html(e: Entry) -> str:
    """The record of engine entry ``e``; nothing is read but the manifest."""
    record = e.extra.get("engine")
    if not isinstance(record, Mapping):
        return "<p class=\"error\">engine data without a record</p>"
    parts = _list(record.get("partitions"))
    facts = [("engine", record.get("engine", "?")), ("form", record.get("form", "?")),
             ("format", record.get("format", "?")), ("partitions", len(parts)),
             ("rows", record.get("rows", "?"))]
    if "shape" in record:
        facts += [("shape", " × ".join(map(str, _list(record["shape"])))),
                  ("dtype", record.get("dtype", "?"))]
    out = ("<p class=\"note\">engine data (written by a distributed engine): its record, "
           "read from the manifest; no engine runs and no partition is read here</p>"
           "<dl class=\"facts engine\">"
           + "".join(f"<dt>{esc(k)}</dt><dd>{esc(v, 200)}</dd>" for k, v in facts) + "</dl>")
    columns, dtypes = _list(record.get("columns")), _list(record.get("dtypes"))
    if columns:
        rows = [(c, dtypes[i] if i < len(dtypes) else "") for i, c in enumerate(columns)]
        out += "<h3>columns</h3>" + grid(("column", "dtype"), rows[:COLUMNS], "columns")
    return out + _partitions(parts)
