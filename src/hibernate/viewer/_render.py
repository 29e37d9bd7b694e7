"""The viewer's pages as HTML strings: plain functions of a manifest or a snapshot (the
history and diff pages are in ``_history``), shared by the web app and ``%hibernate
browse``. Every value that comes from a file or a store is escaped with ``esc`` (the one
sanitizer, then ``html.escape``); links are built here from query parameters that are
URL-encoded, then escaped.

Non-goals: client-side rendering (the pages work with scripts off) and templates."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

from .._reports import _entry_row, human
from ..errors import HibernateError, UntrustedFileError
from ..format import Entry, How, Kind, Manifest, SkipCode
from ._engine import engine_html
from ._preview import esc, grid, preview

__all__ = ["PAGE_SIZE", "entries_html", "entry_html", "href", "meta_html", "page",
           "postmortem_html", "session_html", "sources_html"]

PAGE_SIZE = 200  # entries per page
HEADERS = ("name", "kind", "comes back", "type", "size / detail", "shape/dtype", "group")


def href(base: str, **params: object) -> str:
    """A link to ``base`` with these query parameters (empty ones left out), escaped."""
    query = urlencode({k: v for k, v in params.items() if v not in (None, "")})
    return html.escape(f"{base}?{query}" if query else base)


def page(title: str, body: str, crumbs: Sequence[tuple[str, str]] = ()) -> str:
    """A whole page (``title`` already safe); its CSS and JS come from the package."""
    nav = " / ".join(['<a href="/">sources</a>'] + [f'<a href="{u}">{t}</a>' if u else t
                                                       for t, u in crumbs])
    return ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{title} · hibernate</title>"
            "<link rel=\"stylesheet\" href=\"/static/viewer.css\">"
            "<script src=\"/static/viewer.js\" defer></script></head>"
            f"<body><header><nav>{nav}</nav></header><main><h1>{title}</h1>{body}</main>"
            "</body></html>")


def sources_html(sources: Sequence[tuple[str, bool]]) -> str:
    rows = "".join(f'<li><a href="/s/{i}">{esc(path, 300)}</a> '
                   f'<span class="tag">{"checkpoint store" if store else "session file"}</span>'
                   "</li>" for i, (path, store) in enumerate(sources))
    return f"<ul class=\"sources\">{rows}</ul>"


def _packages(session: Mapping[str, Any]) -> str:
    packages = session.get("packages")
    if not isinstance(packages, dict):
        return ""
    return ", ".join(f"{clean_pair(k, v)}" for k, v in sorted(packages.items(), key=str))


def clean_pair(name: object, version: object) -> str:
    return f"{esc(name, 60)} {esc(version, 30)}"


def meta_html(m: Manifest) -> str:
    """The session's metadata: Python, packages, when and where it was made, signature."""
    s = m.session
    python = f"{s.get('python', '?')} ({s.get('implementation', '?')})"
    where = s.get("origin", "?")
    if s.get("argv0"):
        where = f"{where}: {s.get('argv0')}"
    facts = [("signature", m.signature), ("created", s.get("created", "?")),
             ("origin", where), ("cwd", s.get("cwd", "")), ("Python", python),
             ("platform", s.get("platform", "")),
             ("hibernate", f"{s.get('hibernate', '?')}, format {m.format_version}")]
    items = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v, 200)}</dd>" for k, v in facts)
    items += f"<dt>packages</dt><dd>{_packages(s) or '-'}</dd>"
    return f"<dl class=\"facts meta\">{items}</dl>"


def postmortem_html(m: Manifest, base: str | None = None, cid: str | None = None) -> str:
    """A post-mortem's exception, traceback and frames (their locals link to the entries
    ``frame{i}.{name}`` when ``base`` is a URL); empty for other sessions."""
    pm = m.session.get("postmortem")
    if not isinstance(pm, dict):
        return ""
    stored = {e.name for e in m.entries if e.kind == Kind.VALUE}
    rows = []
    frames = pm.get("frames")
    for f in frames if isinstance(frames, list) else []:
        if not isinstance(f, dict):
            continue
        names = f.get("locals")
        local = []
        for n in names if isinstance(names, list) else []:
            if not isinstance(n, str):
                continue
            entry = f"frame{f.get('index')}.{n}"
            link = base is not None and entry in stored
            local.append(f'<a href="{href(base + "/entry", name=entry, c=cid)}">{esc(n, 40)}</a>'
                         if link and base is not None else esc(n, 40))
        cells = [esc(f.get("index")), esc(f.get("function"), 80),
                 f"{esc(f.get('file'), 160)}:{esc(f.get('line'))}", ", ".join(local) or "-"]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    head = "".join(f"<th>{h}</th>" for h in ("frame", "function", "where", "locals"))
    trace = pm.get("traceback")
    return (f"<section class=\"postmortem\"><h2>post-mortem of {esc(pm.get('exception'), 200)}"
            f"</h2><table class=\"frames\"><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>"
            + (f"<details><summary>traceback</summary><pre>{_lines(trace)}</pre></details>"
               if isinstance(trace, str) else "") + "</section>")


def _lines(text: str, most: int = 200) -> str:
    """Text of several lines, each through the sanitizer (which would fold the breaks)."""
    lines = text.splitlines()
    return "\n".join(esc(line, 300) for line in lines[:most]) + (
        f"\n… ({len(lines) - most} more lines)" if len(lines) > most else "")


def _visible(m: Manifest) -> list[Entry]:
    return [e for e in m.entries if not (e.skip and e.skip.code == SkipCode.DUNDER)]


def _attr(value: object) -> str:
    """A value from a file as an HTML attribute's text (quoted by the caller)."""
    return html.escape(str(value), quote=True)


def entries_html(m: Manifest, base: str | None, cid: str | None = None, number: int = 0,
                 size: int = PAGE_SIZE, load_from: str | None = None) -> str:
    """The entries table, one page of it; names link to their preview when ``base`` is a
    URL (the web app), and are plain text otherwise. With ``load_from`` (the file's or
    the store's path), each name that loads gets a checkbox, and the package's script
    builds a ``hibernate.load``/``checkout`` snippet for the names checked."""
    entries = _visible(m)
    pages = max(1, -(-len(entries) // size))
    number = min(max(number, 0), pages - 1)
    rows = []
    for e in entries[number * size:(number + 1) * size]:
        cells = [esc(c, 120) for c in _entry_row(e)]
        if base is not None and e.kind == Kind.VALUE:
            cells[0] = f'<a href="{href(base + "/entry", name=e.name, c=cid)}">{cells[0]}</a>'
        if load_from is not None and e.kind in (Kind.VALUE, Kind.MODULE, Kind.IMPORT):
            cells[0] = (f'<input type="checkbox" class="pick" data-name="{_attr(e.name)}" '
                        f'aria-label="select {_attr(e.name)}"> {cells[0]}')
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    head = "".join(f"<th>{h}</th>" for h in HEADERS)
    data = ""
    if load_from is not None:
        call = "checkout" if cid else "load"
        data = f' data-call="{call}" data-path="{_attr(load_from)}"'
        if cid:
            data += f' data-checkpoint="{_attr(cid)}"'
    table = (f'<table class="entries"{data}><thead><tr>{head}</tr></thead>'
             f"<tbody>{''.join(rows)}</tbody></table>")
    summary = (f"<p class=\"note\">{len(entries)} names, "
               f"{human(sum(e.size for e in entries))}</p>")
    return summary + table + _pager(base, cid, number, pages)


def _pager(base: str | None, cid: str | None, number: int, pages: int) -> str:
    if base is None or pages == 1:
        return ""
    links = [f'<a href="{href(base, c=cid, page=number - 1)}">previous</a>' if number else "",
             f"page {number + 1} of {pages}",
             f'<a href="{href(base, c=cid, page=number + 1)}">next</a>'
             if number + 1 < pages else ""]
    return f"<p class=\"pager\">{' '.join(x for x in links if x)}</p>"


def entry_html(e: Entry, snapshot: Any) -> str:
    """One entry's preview, read from a ``data_only`` snapshot; entries that would need
    code from the file say so and are not loaded."""
    facts = grid(HEADERS, [_entry_row(e)])
    if e.kind == Kind.MODULE or e.kind == Kind.IMPORT:
        return facts + "<p class=\"note\">a reference: it is imported on load, not stored</p>"
    if e.kind != Kind.VALUE:
        return facts + "<p class=\"note\">not stored</p>"
    if e.how == How.ENGINE:
        return facts + engine_html(e)
    try:
        value = snapshot[e.name]
    except UntrustedFileError:
        return facts + ("<p class=\"needs-code\">This value needs code from the file to come "
                        "back (unpickling): it is not loaded here. Load it with "
                        "<code>hibernate.load(..., trust=True)</code> if you trust the file."
                        "</p>")
    except HibernateError as err:
        return facts + f"<p class=\"error\">cannot read it: {esc(err, 300)}</p>"
    return facts + f"<section class=\"preview\">{preview(value)}</section>"


def session_html(m: Manifest, snapshot: Any = None, previews: int = 0) -> str:
    """A session without a server (``%hibernate browse``): metadata, entries and, from
    ``snapshot``, the previews of the first ``previews`` stored values."""
    out = [f"<div class=\"hibernate-view\"><h3>{esc(m.path or 'session', 300)}</h3>",
           meta_html(m), postmortem_html(m), entries_html(m, None)]
    if snapshot is not None:
        shown = [e for e in _visible(m) if e.kind == Kind.VALUE][:previews]
        out += [f"<details><summary>{esc(e.name)} ({esc(e.type_name)})</summary>"
                f"{entry_html(e, snapshot)}</details>" for e in shown]
    return "".join(out) + "</div>"
