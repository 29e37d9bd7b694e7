"""Previews of values read with ``data_only``: DataFrames (first and last rows, dtypes, a
summary per column), numpy arrays (shape, dtype, min/max/mean), Arrow tables, strings,
numbers and builtin containers. One small function per type, found through a table keyed
by the type's module and name (nothing imported to look a type up). Every value shown goes
through ``esc`` (the one sanitizer, then HTML escaping).

Numeric 2-D arrays get a small heat map, numeric 1-D arrays and numeric frame columns a
small histogram (PNG ``data:`` URLs drawn by ``_image``).

Non-goals: charts with axes; previews of values that need code (the caller says so
instead, and never loads them)."""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from typing import Any

from .._reports import clean
from ._image import heatmap, histogram

__all__ = ["ROWS", "esc", "grid", "preview"]

ROWS = 5  # first and last rows shown
COLUMNS = 40  # columns shown at most
PICTURES = 12  # column histograms shown at most
TEXT = 2000  # characters of a string shown


def esc(value: object, limit: int = 80) -> str:
    """Text from a file, made safe for HTML: the one sanitizer, then ``html.escape``."""
    return html.escape(clean(value, limit))


def grid(headers: Sequence[object], rows: Sequence[Sequence[object]], cls: str = "") -> str:
    """A table of escaped cells."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>" for r in rows)
    attr = f' class="{cls}"' if cls else ""
    return f"<table{attr}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _facts(pairs: Sequence[tuple[str, object]]) -> str:
    return "<dl class=\"facts\">" + "".join(f"<dt>{esc(k)}</dt><dd>{esc(v, 200)}</dd>"
                                           for k, v in pairs) + "</dl>"


def _number(x: Any) -> str:
    try:
        return f"{float(x):.6g}"
    except (TypeError, ValueError):
        return str(x)


def _pandas_frame(df: Any) -> str:
    n = len(df)
    cols = list(df.columns[:COLUMNS])
    part = df[cols] if len(df.columns) > COLUMNS else df
    shown = part if n <= 2 * ROWS else part.iloc[list(range(ROWS)) + list(range(n - ROWS, n))]
    rows = [[idx, *values] for idx, values in zip(shown.index, shown.itertuples(index=False))]
    gap = "" if n <= 2 * ROWS else f"<p class=\"note\">… {n - 2 * ROWS} rows not shown …</p>"
    return (_facts([("rows", n), ("columns", len(df.columns))])
            + "<h3>rows</h3>" + grid(["", *cols], rows, "rows") + gap
            + "<h3>columns</h3>" + grid(("column", "dtype", "nulls", "summary"),
                                        [_column(df[c], c) for c in cols])
            + _column_histograms(df, cols))


def _figure(url: str | None, caption: str, cls: str) -> str:
    if url is None:
        return ""
    return (f'<figure class="{cls}"><img src="{url}" alt="{html.escape(caption)}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def _column_histograms(df: Any, cols: Sequence[object]) -> str:
    """A histogram for each of the first numeric columns (a name seen once)."""
    figures: list[str] = []
    for c in cols:
        s = df[c]
        if len(figures) == PICTURES or not isinstance(s, type(s.iloc[:0])) or s.ndim != 1:
            continue
        if getattr(s.dtype, "kind", "O") in "iufb":
            values = s.to_numpy(dtype="float64", na_value=float("nan"))
            figure = _figure(histogram(values), clean(c, 60), "histogram")
            figures += [figure] if figure else []
    shown = "".join(figures)
    return f"<h3>histograms</h3><div class=\"pictures\">{shown}</div>" if shown else ""


def _column(s: Any, name: object) -> tuple[object, ...]:
    if not isinstance(s, type(s.iloc[:0])) or s.ndim != 1:  # duplicate column names
        return (name, "", "", "(several columns with this name)")
    nulls = int(s.isna().sum())
    kind = getattr(s.dtype, "kind", "O")
    if kind in "iufb" and len(s) - nulls > 0:
        summary = (f"min {_number(s.min())}, max {_number(s.max())}, "
                   f"mean {_number(s.astype('float64').mean())}")
    else:
        counts = s.astype("object").value_counts().head(3)
        summary = "top: " + ", ".join(f"{clean(v, 30)} ({c})" for v, c in counts.items())
    return (name, s.dtype, nulls, summary)


def _numpy_array(a: Any) -> str:
    facts: list[tuple[str, object]] = [("shape", " × ".join(map(str, a.shape)) or "()"),
                                       ("dtype", a.dtype), ("size", a.size)]
    if a.dtype.kind in "iufb" and a.size:
        facts += [("min", _number(a.min())), ("max", _number(a.max())),
                  ("mean", _number(a.astype("float64").mean()))]
    flat = a.reshape(-1)[: 2 * COLUMNS]
    values = ", ".join(_number(x) if a.dtype.kind in "iuf" else clean(x, 30) for x in flat)
    more = ", …" if a.size > len(flat) else ""
    picture = ""
    if a.ndim == 2:
        picture = _figure(heatmap(a), "heat map (min dark, max light)", "heatmap")
    elif a.ndim == 1:
        picture = _figure(histogram(a), "histogram", "histogram")
    return (_facts(facts) + picture
            + f"<h3>first values</h3><pre>{esc(values + more, 4000)}</pre>")


def _arrow_table(t: Any) -> str:
    n = t.num_rows
    names = t.column_names[:COLUMNS]
    head = t.select(names).slice(0, ROWS).to_pylist()
    tail = t.select(names).slice(max(ROWS, n - ROWS)).to_pylist() if n > ROWS else []
    rows = [[r[c] for c in names] for r in head + tail]
    return (_facts([("rows", n), ("columns", t.num_columns)])
            + "<h3>rows</h3>" + grid(names, rows, "rows")
            + "<h3>schema</h3>" + grid(("column", "type", "nulls"),
                                       [(f.name, f.type, t.column(f.name).null_count)
                                        for f in t.schema if f.name in names]))


def _polars_frame(df: Any) -> str:
    return _arrow_table(df.to_arrow())


def _text(s: str) -> str:
    lines = s.splitlines() or [""]
    shown = "\n".join(esc(line, 200) for line in lines[:40])
    more = f"\n… ({len(lines) - 40} more lines)" if len(lines) > 40 else ""
    return _facts([("length", len(s)), ("lines", len(lines))]) + f"<pre>{shown}{more}</pre>"


def _bytes(b: bytes) -> str:
    return _facts([("length", len(b))]) + f"<pre>{esc(repr(b[:400]), 2000)}</pre>"


def _scalar(x: object) -> str:
    return f"<pre>{esc(repr(x), TEXT)}</pre>"


def _container(c: Any) -> str:
    return _facts([("length", len(c))]) + f"<pre>{esc(repr(c), TEXT)}</pre>"


_PREVIEWS: dict[tuple[str, str], Callable[[Any], str]] = {
    ("pandas", "DataFrame"): _pandas_frame,
    ("pandas.core.frame", "DataFrame"): _pandas_frame,
    ("numpy", "ndarray"): _numpy_array,
    ("pyarrow.lib", "Table"): _arrow_table,
    ("polars.dataframe.frame", "DataFrame"): _polars_frame,
    ("builtins", "str"): _text,
    ("builtins", "bytes"): _bytes,
    **{("builtins", t): _scalar for t in ("int", "float", "complex", "bool", "NoneType")},
    **{("builtins", t): _container for t in ("list", "tuple", "dict", "set", "frozenset")},
}


def preview(value: object) -> str:
    """The preview of a value that was read with ``data_only`` (so of a plain type)."""
    t = type(value)
    show = _PREVIEWS.get((t.__module__, t.__name__))
    if show is None and t.__module__ == "pandas.core.series":
        show = _series
    if show is None:
        return f"<p>{esc(t.__module__ + '.' + t.__qualname__, 200)}</p>" + _scalar(value)
    return show(value)


def _series(s: Any) -> str:
    return _pandas_frame(s.to_frame())
