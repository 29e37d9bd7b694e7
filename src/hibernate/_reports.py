"""Reports: what a save or load did, as frozen dataclasses that print as tables.

Text that comes from a file (names, type names, messages) is escaped: HTML-escaped in
``_repr_html_`` and stripped of control characters (terminal escapes) in ``__str__``.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ._manifest import Skip

if TYPE_CHECKING:
    from ._manifest import Entry, Manifest

__all__ = ["LoadReport", "SaveReport", "SavedEntry"]


def clean(text: object, limit: int = 80) -> str:
    """Printable, one-line, bounded text: control characters (ESC, CR...) become '?'."""
    s = "".join(ch if ch.isprintable() else "?" for ch in str(text))
    return s if len(s) <= limit else s[: limit - 1] + "…"


def human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[clean(c) for c in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip(),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells]
    return "\n".join(lines)


def html_table(headers: Sequence[str], rows: Sequence[Sequence[object]], title: str = "") -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>"
                   for r in rows)
    cap = f"<caption>{html.escape(title)}</caption>" if title else ""
    return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _skip_rows(skipped: Mapping[str, Skip]) -> list[tuple[str, str, str]]:
    return [(n, s.code, s.message) for n, s in skipped.items() if s.code != "dunder"]


@dataclass(frozen=True)
class SavedEntry:
    name: str
    kind: str
    type_name: str
    bytes: int
    shape: tuple[int, ...] | None = None
    dtype: str | None = None


@dataclass(frozen=True)
class SaveReport:
    path: str
    entries: tuple[SavedEntry, ...]
    skipped: Mapping[str, Skip]
    bytes_written: int
    seconds: float

    def _rows(self) -> list[tuple[object, ...]]:
        return [(e.name, e.kind, e.type_name, human(e.bytes) if e.kind == "value" else "",
                 _shape(e.shape, e.dtype)) for e in self.entries]

    def __str__(self) -> str:
        out = [f"saved {len(self.entries)} names to {clean(self.path, 200)} "
               f"({human(self.bytes_written)}, {self.seconds:.2f} s)",
               table(("name", "kind", "type", "size", "shape/dtype"), self._rows())]
        rows = _skip_rows(self.skipped)
        if rows:
            out += [f"\nskipped {len(rows)}:", table(("name", "code", "reason"), rows)]
        return "\n".join(out)

    def _repr_html_(self) -> str:
        title = (f"saved {len(self.entries)} names to {self.path} "
                 f"({human(self.bytes_written)}, {self.seconds:.2f} s)")
        out = html_table(("name", "kind", "type", "size", "shape/dtype"), self._rows(), title)
        rows = _skip_rows(self.skipped)
        if rows:
            out += html_table(("name", "code", "reason"), rows, f"skipped {len(rows)}")
        return out


@dataclass(frozen=True)
class LoadReport:
    path: str
    restored: tuple[str, ...]
    failed: Mapping[str, str]
    skipped: Mapping[str, Skip]
    overwritten: tuple[str, ...]
    kept: tuple[str, ...]
    seconds: float
    signature: str = "unchecked"
    trusted: bool = False

    @property
    def ok(self) -> bool:
        return not self.failed

    def _lines(self) -> list[tuple[str, str, str]]:
        rows = [(n, "restored", "overwrote" if n in self.overwritten else "")
                for n in self.restored]
        rows += [(n, "FAILED", r) for n, r in self.failed.items()]
        rows += [(n, f"skipped ({s.code})", s.message) for n, s in self.skipped.items()
                 if s.code != "dunder"]
        return rows

    def _title(self) -> str:
        return (f"restored {len(self.restored)} names from {self.path} in {self.seconds:.2f} s"
                f"; {len(self.failed)} failed; signature {self.signature}")

    def __str__(self) -> str:
        return "\n".join([clean(self._title(), 300),
                          table(("name", "status", "detail"), self._lines())])

    def _repr_html_(self) -> str:
        return html_table(("name", "status", "detail"), self._lines(), self._title())


def _shape(shape: tuple[int, ...] | None, dtype: str | None) -> str:
    parts = []
    if shape is not None:
        parts.append("×".join(str(n) for n in shape) or "()")
    if dtype is not None:
        parts.append(dtype)
    return " ".join(parts)


def _entry_row(e: Entry) -> tuple[object, ...]:
    if e.kind == "value":
        detail = human(e.size)
    elif e.kind == "module":
        detail = f"import {e.module}"
    elif e.kind == "import":
        detail = f"from {e.module} import {e.qualname}"
    else:
        detail = f"{e.skip.code}: {e.skip.message}" if e.skip else ""
    group = "" if e.group is None else str(e.group)
    return (e.name, e.kind, e.type_name, detail, _shape(e.shape, e.dtype), group)


_HEADERS = ("name", "kind", "type", "size / detail", "shape/dtype", "group")


def _manifest_rows(m: Manifest) -> list[tuple[object, ...]]:
    return [_entry_row(e) for e in m.entries if not (e.skip and e.skip.code == "dunder")]


def _manifest_title(m: Manifest) -> str:
    s = m.session
    return (f"{m.path or 'hibernate file'}: format {m.format_version}, made "
            f"{s.get('created', '?')} by hibernate {s.get('hibernate', '?')} on Python "
            f"{s.get('python', '?')} ({s.get('origin', '?')}); signature {m.signature}")


def _postmortem_lines(m: Manifest) -> list[str]:
    pm = m.session.get("postmortem")
    if not isinstance(pm, dict):
        return []
    lines = [f"post-mortem of {clean(pm.get('exception'), 200)}:"]
    for f in pm.get("frames", []) if isinstance(pm.get("frames"), list) else []:
        if isinstance(f, dict):
            local = f.get("locals")
            names = ", ".join(clean(n, 40) for n in (local if isinstance(local, list) else [])
                              if isinstance(n, str))
            lines.append(f"  frame{clean(f.get('index'))} {clean(f.get('function'))} "
                         f"({clean(f.get('file'), 120)}:{clean(f.get('line'))}) "
                         f"locals: {names or '-'}")
    return lines


def manifest_table(m: Manifest) -> str:
    return "\n".join([clean(_manifest_title(m), 400), table(_HEADERS, _manifest_rows(m)),
                      *_postmortem_lines(m)])


def manifest_html(m: Manifest) -> str:
    pm = "".join(f"<pre>{html.escape(line)}</pre>" for line in _postmortem_lines(m))
    return html_table(_HEADERS, _manifest_rows(m), _manifest_title(m)) + pm


