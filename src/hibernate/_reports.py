"""Reports: what a save or load did, as frozen dataclasses that print as tables.

Text that comes from a file (names, type names, messages) is escaped: HTML-escaped in
``_repr_html_`` and stripped of control characters (terminal escapes) in ``__str__``.
"""

from __future__ import annotations

import html
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from ._text import SanitizedStream, clean, html_table, human, sanitize, table
from .format import Entry, How, Kind, Skip, SkipCode
from .format import Manifest as _Manifest

__all__ = ["LoadReport", "Manifest", "SanitizedStream", "SaveReport", "SavedEntry", "clean",
           "html_table", "human", "sanitize", "table"]


# The reason every IPython history name and helper (_i1, _oh, In, Out, exit...) is skipped
# with: reports fold them into one line, after what the user must know.
IPYTHON_OWN = "IPython's own history and helpers"


def _skip_rows(skipped: Mapping[str, Skip]) -> list[tuple[str, str, str]]:
    rows = [(n, str(s.code), s.message) for n, s in skipped.items()
            if s.code != SkipCode.DUNDER and s.message != IPYTHON_OWN]
    own = sum(1 for s in skipped.values() if s.message == IPYTHON_OWN)
    if own:
        rows.append((f"{own} IPython name{'s' if own > 1 else ''}", "ipython-internal",
                     f"{IPYTHON_OWN}: never saved"))
    return rows


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
    # a group's names (comma-separated) -> what in it was saved as a hibernate.Placeholder
    placeholders: Mapping[str, tuple[Skip, ...]] = field(default_factory=dict)
    # name -> how a distributed engine's value was saved, and why (see engines/)
    notes: Mapping[str, str] = field(default_factory=dict)

    def _rows(self) -> list[tuple[object, ...]]:
        return [(e.name, e.kind, e.type_name, human(e.bytes) if e.kind == Kind.VALUE else "",
                 _shape(e.shape, e.dtype)) for e in self.entries]

    def _placeholder_rows(self) -> list[tuple[str, str]]:
        return [(n, s.message) for n, lost in self.placeholders.items() for s in lost]

    def _title(self) -> str:
        return (f"saved {len(self.entries)} names to {self.path} "
                f"({human(self.bytes_written)} in all, {self.seconds:.2f} s)")

    def __str__(self) -> str:
        """What was not saved first (and why), then what was, then how engines saved."""
        out = [clean(self._title(), 300)]
        rows = _skip_rows(self.skipped)
        if rows:
            out += [f"\nnot saved ({len(rows)}):", table(("name", "code", "reason"), rows)]
        lost = self._placeholder_rows()
        if lost:
            out += [f"\nsaved with placeholders for what could not be saved ({len(lost)}):",
                    table(("name", "placeholder for"), lost)]
        out += [f"\nsaved ({len(self.entries)}):",
                table(("name", "kind", "type", "size", "shape/dtype"), self._rows(), right=(3,))]
        if self.notes:
            out += ["\nengines:", table(("name", "how"), sorted(self.notes.items()))]
        return "\n".join(out)

    def _repr_html_(self) -> str:
        out = f"<p>{html.escape(clean(self._title(), 300))}</p>"
        rows = _skip_rows(self.skipped)
        if rows:
            out += html_table(("name", "code", "reason"), rows, f"not saved ({len(rows)})")
        lost = self._placeholder_rows()
        if lost:
            out += html_table(("name", "placeholder for"), lost,
                              f"saved with placeholders ({len(lost)})")
        out += html_table(("name", "kind", "type", "size", "shape/dtype"), self._rows(),
                          f"saved ({len(self.entries)})", right=(3,))
        if self.notes:
            out += html_table(("name", "how"), sorted(self.notes.items()), "engines")
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
    # how a restored name came back when it is worth saying (e.g. its functions were rebuilt
    # from source on another Python)
    notes: Mapping[str, str] = field(default_factory=dict)
    # what differs between the saving environment and this one (Python, packages)
    environment: tuple[str, ...] = ()
    # the saved environment's parts put back (load(environment=...)): part -> "restored"
    # or why not
    environment_restored: Mapping[str, str] = field(default_factory=dict)
    # load(replay=...): name -> the recorded cells replayed for it (its outcome is in
    # restored/notes or failed)
    replay_plan: Mapping[str, tuple[int, ...]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failed

    def _lines(self) -> list[tuple[str, str, str]]:
        """What failed or was not restored first (and why), then what was."""
        rows = [(n, "FAILED", r) for n, r in self.failed.items()]
        rows += [(n, f"skipped ({code})", message)
                 for n, code, message in _skip_rows(self.skipped)]
        rows += [(n, "restored", "; ".join(filter(None, [
                    "overwrote" if n in self.overwritten else "", self.notes.get(n, "")])))
                 for n in self.restored]
        rows += [(f"[{part}]", "environment", outcome)
                 for part, outcome in self.environment_restored.items()]
        return rows

    def _title(self) -> str:
        return (f"restored {len(self.restored)} names from {self.path} in {self.seconds:.2f} s"
                f"; {len(self.failed)} failed; signature {self.signature}")

    def __str__(self) -> str:
        return "\n".join([clean(self._title(), 300),
                          table(("name", "status", "detail"), self._lines()),
                          *(clean(line, 300) for line in self.environment)])

    def _repr_html_(self) -> str:
        env = "".join(f"<pre>{html.escape(clean(line, 300))}</pre>" for line in self.environment)
        return html_table(("name", "status", "detail"), self._lines(), self._title()) + env


def _shape(shape: tuple[int, ...] | None, dtype: str | None) -> str:
    parts = []
    if shape is not None:
        parts.append("×".join(str(n) for n in shape) or "()")
    if dtype is not None:
        parts.append(dtype)
    return " ".join(parts)


def _entry_row(e: Entry) -> tuple[object, ...]:
    if e.kind == Kind.VALUE:
        detail = human(e.size)
    elif e.kind == Kind.MODULE:
        detail = f"import {e.module}"
    elif e.kind == Kind.IMPORT:
        detail = f"from {e.module} import {e.qualname}"
    else:
        detail = f"{e.skip.code}: {e.skip.message}" if e.skip else ""
    group = "" if e.group is None else str(e.group)
    engine = e.extra.get("engine") if e.how == How.ENGINE else None
    if isinstance(engine, dict):
        detail = f"{detail}; {_engine_detail(engine)}"
    cells = e.extra.get("replay")
    if isinstance(cells, list) and cells and all(isinstance(n, int) for n in cells):
        detail = f"{detail}; replay: cells {', '.join(map(str, cells))}".lstrip("; ")
    return (e.name, e.kind, e.how, e.type_name, detail, _shape(e.shape, e.dtype), group)


def _engine_detail(record: dict[str, Any]) -> str:
    """An engine entry's record in a few words (read from the manifest: no engine runs)."""
    parts = record.get("partitions")
    count = len(parts) if isinstance(parts, list) else "?"
    rows = record.get("rows")
    what = f"{record.get('engine', '?')} {record.get('form', '?')}: {count} " \
           f"{record.get('format', '?')} partitions"
    if isinstance(rows, int):
        what += f", {rows} rows"
    columns = record.get("columns")
    if isinstance(columns, list):
        what += f", columns {', '.join(str(c) for c in columns[:8])}" + (
            ", ..." if len(columns) > 8 else "")
    return what


_HEADERS = ("name", "kind", "comes back", "type", "size / detail", "shape/dtype", "group")


def _manifest_rows(m: _Manifest) -> list[tuple[object, ...]]:
    return [_entry_row(e) for e in m.entries
            if not (e.skip and e.skip.code == SkipCode.DUNDER)]


def _placeholder_lines(m: _Manifest) -> list[str]:
    lines = []
    for g in m.groups:
        for p in g.placeholders:
            lines.append(f"  group {g.id} ({clean(', '.join(g.names), 80)}): placeholder for "
                         f"{clean(p.message, 200)}")
    return (["placeholders (they raise on use):", *lines] if lines else [])


def _manifest_title(m: _Manifest) -> str:
    s = m.session
    return (f"{m.path or 'hibernate file'}: format {m.format_version}, made "
            f"{s.get('created', '?')} by hibernate {s.get('hibernate', '?')} on Python "
            f"{s.get('python', '?')} ({s.get('origin', '?')}); signature {m.signature}")


def environment_differences(session: Mapping[str, Any]) -> tuple[str, ...]:
    """What differs between the Python and packages a session was saved with and the ones
    installed here, and what to install; read from the manifest, nothing imported."""
    import contextlib
    import importlib.metadata
    import importlib.util
    import platform

    out = []
    saved, here = session.get("python"), platform.python_version()
    if isinstance(saved, str) and saved.split(".")[:2] != here.split(".")[:2]:
        out.append(f"saved on Python {clean(saved, 20)}, this is {here}: functions and classes "
                   "saved by value are rebuilt from their source (or fail without it)")
    packages = session.get("packages")
    for name, version in sorted(packages.items()) if isinstance(packages, dict) else []:
        if not isinstance(name, str) or not isinstance(version, str) or not name.isidentifier():
            continue
        module = sys.modules.get(name)
        installed = getattr(module, "__version__", None) if module is not None else None
        if module is None:
            try:  # cheap: no import, and no scan of every installed distribution
                found = importlib.util.find_spec(name) is not None
            except (ImportError, ValueError):
                found = False
            if not found:
                dist = (importlib.metadata.packages_distributions().get(name) or [name])[0]
                out.append(f"{clean(name, 60)} {clean(version, 30)} is not installed: "
                           f"pip install '{clean(dist, 60)}=={clean(version, 30)}'")
                continue
            with contextlib.suppress(importlib.metadata.PackageNotFoundError):
                installed = importlib.metadata.version(name)
        if isinstance(installed, str) and installed != version:
            out.append(f"{clean(name, 60)}: saved with {clean(version, 30)}, {installed} "
                       "is installed")
    return tuple(out)


def _environment_lines(m: _Manifest) -> list[str]:
    out = []
    saved = m.sections.get("environment")
    if isinstance(saved, dict) and saved:
        out.append("saved environment (load with environment=True):")
        for part, value in saved.items():
            if part == "options" and isinstance(value, dict):
                text = ", ".join(clean(lib, 20) for lib in value)
            elif part == "env_vars" and isinstance(value, dict):
                text = ", ".join(clean(k, 40) for k in value)  # names only, never values
            elif isinstance(value, (list, dict)):
                text = f"{len(value)} entries"
            else:
                text = clean(value, 200)
            out.append(f"  {clean(part, 20)}: {text}")
    lines = environment_differences(m.session)
    if lines:
        out += ["differs from this environment:", *(f"  {line}" for line in lines)]
    return out


def _postmortem_lines(m: _Manifest) -> list[str]:
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


def manifest_table(m: _Manifest) -> str:
    return "\n".join([clean(_manifest_title(m), 400), table(_HEADERS, _manifest_rows(m)),
                      *_placeholder_lines(m), *_postmortem_lines(m), *_environment_lines(m)])


def manifest_html(m: _Manifest) -> str:
    extra = _placeholder_lines(m) + _postmortem_lines(m) + _environment_lines(m)
    pm = "".join(f"<pre>{html.escape(line)}</pre>" for line in extra)
    return html_table(_HEADERS, _manifest_rows(m), _manifest_title(m)) + pm


@dataclass(frozen=True, slots=True)
class Manifest(_Manifest):
    """A file's or checkpoint's manifest as ``inspect`` returns it: the format's manifest
    (every field, no values) that prints as a table and renders in Jupyter."""

    @classmethod
    def of(cls, m: _Manifest) -> Manifest:
        return cls(**{f.name: getattr(m, f.name) for f in fields(m)})

    def __str__(self) -> str:
        return manifest_table(self)

    def _repr_html_(self) -> str:
        return manifest_html(self)



