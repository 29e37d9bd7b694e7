"""``%hibernate browse``: the session view as static HTML, inline in Jupyter (no server):
the same rendering functions as the web app, previews read with ``data_only``."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from .._reports import manifest_table
from ._render import session_html
from ._sources import Source

__all__ = ["View", "browse"]

PREVIEWS = 20  # stored values previewed inline (each folded in a <details>)


@dataclass(frozen=True, repr=False)
class View:
    """A rendered session: HTML in Jupyter, the manifest's table in a terminal."""

    html: str
    text: str

    def _repr_html_(self) -> str:
        return self.html

    def __str__(self) -> str:
        return self.text

    __repr__ = __str__  # a terminal IPython displays the repr


def browse(path: str | os.PathLike[str], *, storage_options: dict[str, Any] | None = None,
           previews: int = PREVIEWS) -> View:
    """A file's session, or a store's HEAD checkpoint's, with the previews of its first
    ``previews`` stored values; nothing that needs code from the file is loaded."""
    src = Source.at(path, storage_options)
    manifest = src.manifest()
    with src.open() as snapshot:
        return View(session_html(manifest, snapshot, previews), manifest_table(manifest))
