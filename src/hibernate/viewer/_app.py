"""The web app: the pages of ``_render`` behind a token, served by uvicorn on 127.0.0.1.

Every request needs the token: in the URL the first time (``?token=``, as Jupyter does),
then in an HttpOnly, SameSite=Strict cookie; without it the answer is 403. Every answer
carries a strict Content-Security-Policy (scripts and styles only from the package's own
``static/`` files, no inline script, nothing from elsewhere), ``nosniff`` and
``no-referrer``. Nothing changes in a file or a store: every route is a GET that reads.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from .._reports import clean
from ..errors import HibernateError, UntrustedFileError
from ..format import Kind
from ._download import FORMATS, Refused, disposition, encode, formats_for
from ._history import diff_html, timeline_html
from ._preview import esc
from ._render import (
    entries_html,
    entry_html,
    href,
    meta_html,
    page,
    postmortem_html,
    sources_html,
)
from ._sources import Source

__all__ = ["CSP", "make_app", "serve"]

CSP = ("default-src 'none'; style-src 'self'; img-src 'self' data:; script-src 'self'; "
       "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
STATIC = Path(__file__).parent / "static"
HEADERS = [(b"content-security-policy", CSP.encode()), (b"x-content-type-options", b"nosniff"),
           (b"referrer-policy", b"no-referrer"), (b"cache-control", b"no-store")]

ASGI = Callable[..., Any]


class TokenGuard:
    """ASGI middleware: 403 without the token; the security headers on every answer."""

    def __init__(self, app: ASGI, token: str, cookie: str) -> None:
        self.app, self.token, self.cookie = app, token, cookie

    def _given(self, scope: dict[str, Any]) -> tuple[bool, bool]:
        """(allowed, came in the URL)."""
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        in_url = query.get("token", [""])[0]
        if in_url and secrets.compare_digest(in_url, self.token):
            return True, True
        for name, value in scope.get("headers", []):
            if name == b"cookie":
                for part in value.decode("latin-1").split(";"):
                    k, _, v = part.strip().partition("=")
                    if k == self.cookie and secrets.compare_digest(v, self.token):
                        return True, False
        return False, False

    async def __call__(self, scope: dict[str, Any], receive: ASGI, send: ASGI) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)  # type: ignore[no-any-return]
        allowed, in_url = self._given(scope)
        extra = list(HEADERS)
        if in_url:
            extra.append((b"set-cookie", f"{self.cookie}={self.token}; HttpOnly; "
                          "SameSite=Strict; Path=/".encode()))

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        if not allowed:
            body = b"403: this viewer needs the token from the URL it printed at start"
            await send_with_headers({"type": "http.response.start", "status": 403,
                                     "headers": [(b"content-type", b"text/plain")]})
            await send_with_headers({"type": "http.response.body", "body": body})
            return None
        return await self.app(scope, receive, send_with_headers)  # type: ignore[no-any-return]


def _int(value: str | None) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0


def _for_python(path: str) -> str:
    """The path as a snippet run elsewhere needs it: local paths made absolute."""
    return path if "://" in path else os.path.abspath(path)


def make_app(sources: Sequence[Source], token: str, cookie: str = "hibernate_token") -> ASGI:
    """The viewer over ``sources``, guarded by ``token``."""

    def source(request: Request) -> tuple[int, Source]:
        i = int(request.path_params["i"])
        if not 0 <= i < len(sources):
            raise LookupError(f"no source {i}")
        return i, sources[i]

    def home(request: Request) -> HTMLResponse:
        body = sources_html([(s.path, s.store) for s in sources])
        return HTMLResponse(page("sources", body))

    def session(request: Request) -> HTMLResponse:
        i, src = source(request)
        cid = request.query_params.get("c")
        base, crumb = f"/s/{i}", esc(src.path, 200)
        number = _int(request.query_params.get("page"))
        if src.store and not cid:
            body = "<h2>history</h2>" + timeline_html(src.timeline(), src.head(), base, number)
            return HTMLResponse(page(crumb, body))
        m = src.manifest(cid)
        body = (meta_html(m) + postmortem_html(m, base, cid) + "<h2>variables</h2>"
                + entries_html(m, base, cid, number, load_from=_for_python(src.path)))
        crumbs = [(crumb, base)] if src.store else []
        return HTMLResponse(page(esc(m.path or src.path, 200), body, crumbs))

    def entry(request: Request) -> HTMLResponse:
        i, src = source(request)
        name, cid = request.query_params.get("name", ""), request.query_params.get("c")
        m = src.manifest(cid)
        found = next((e for e in m.entries if e.name == name), None)
        if found is None:
            raise LookupError(f"no entry {name!r}")
        with src.open(cid) as snapshot:
            body = entry_html(found, snapshot)
        links = [f'<a href="{href(f"/s/{i}/download", name=name, c=cid, format=f)}" '
                 f'download>{f}</a>' for f in formats_for(found.type_name)]
        if found.kind == Kind.VALUE and links:
            body += f"<p class=\"downloads\">download as {' · '.join(links)}</p>"
        crumbs = [(esc(src.path, 200), href(f"/s/{i}", c=cid))]
        return HTMLResponse(page(esc(name, 120), body, crumbs))

    def download(request: Request) -> Response:
        """One entry as CSV, Parquet or ``.npy``, read with ``data_only``."""
        _, src = source(request)
        q = request.query_params
        name, cid, fmt = q.get("name", ""), q.get("c"), q.get("format", "")
        found = next((e for e in src.manifest(cid).entries if e.name == name), None)
        if found is None or found.kind != Kind.VALUE:
            return PlainTextResponse(f"404: {clean(name, 120)} is not a stored value", 404)
        if fmt not in FORMATS:
            return PlainTextResponse("404: the formats are csv, parquet and npy", 404)
        try:
            with src.open(cid) as snapshot:
                pieces = encode(snapshot[name], fmt)
        except UntrustedFileError:
            return PlainTextResponse(f"409: {clean(name, 120)} needs code from the file "
                                     "(unpickling) to come back: not loaded here", 409)
        except (Refused, HibernateError) as why:
            return PlainTextResponse(f"409: {clean(why, 300)}", 409)
        return StreamingResponse(pieces, media_type=FORMATS[fmt],
                                 headers={"content-disposition": disposition(name, fmt)})

    def diff(request: Request) -> HTMLResponse:
        i, src = source(request)
        a, b = request.query_params.get("a", ""), request.query_params.get("b", "")
        d = src.diff(a, b)
        body = diff_html(d, src.frame_changes(a, b, d.changed))
        title = f"diff {esc(a, 20)} → {esc(b, 20)}"
        return HTMLResponse(page(title, body, [(esc(src.path, 200), f"/s/{i}")]))

    async def not_found(request: Request, exc: Exception) -> HTMLResponse:
        return HTMLResponse(page("not found", f"<p class=\"error\">{esc(exc, 300)}</p>"), 404)

    app = Starlette(routes=[
        Route("/", home), Route("/s/{i:int}", session), Route("/s/{i:int}/entry", entry),
        Route("/s/{i:int}/diff", diff), Route("/s/{i:int}/download", download),
        Mount("/static", app=StaticFiles(directory=STATIC), name="static")],
        exception_handlers={LookupError: not_found, HibernateError: not_found})
    return TokenGuard(app, token, cookie)


def serve(paths: Sequence[str], port: int = 0, options: dict[str, Any] | None = None,
          announce: Callable[[str], None] = print) -> None:
    """Serve ``paths`` on 127.0.0.1 (a free port when ``port`` is 0) until interrupted;
    ``announce`` gets the URL with the token."""
    import uvicorn

    sources = [Source.at(p, options) for p in paths]
    for src in sources:  # a path that is neither a file nor a store fails now, not later
        if not src.store:
            src.manifest()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(128)  # connections wait in the backlog until the server takes them
    port = sock.getsockname()[1]
    token = secrets.token_urlsafe(32)
    app = make_app(sources, token, f"hibernate_token_{port}")  # cookies ignore ports
    config = uvicorn.Config(app, log_level="warning", lifespan="off")
    announce(f"http://127.0.0.1:{port}/?token={token}")
    uvicorn.Server(config).run(sockets=[sock])
