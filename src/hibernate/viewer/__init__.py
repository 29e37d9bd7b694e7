"""The viewer: a session file or a checkpoint store, seen in a browser (``hibernate serve``)
or inline in Jupyter (``%hibernate browse``).

A front end like the CLI: it reads with the library's own functions (``inspect``,
``open(data_only=True)``, ``log``, ``diff``) and never unpickles anything from a file.
Pages are rendered on the server (``_render``, ``_preview``: plain functions that return HTML,
every value from a file escaped through the one sanitizer); ``_app`` wraps them in a
Starlette app behind a token and a strict Content-Security-Policy, served by uvicorn on
127.0.0.1. Starlette and uvicorn (the ``viewer`` extra) are imported only by ``_app``.

A store's history is drawn as a graph (``_graph``: inline SVG made on the server) with a
diff between any two checkpoints (``_history``).

Non-goals: changing anything in a file or store.
"""

from __future__ import annotations

from ._browse import View, browse
from ._render import session_html
from ._sources import Source, is_store

__all__ = ["Source", "View", "browse", "is_store", "session_html"]
