"""The checkpoints layer: a session's history in a store (a directory or any fsspec URL).

A store holds content-addressed chunks (_cas.py) and one small record per checkpoint whose
manifest has a ``.hib`` file's schema (_repo.py). Checkpoints are written and restored by
the same pipeline as files (_record.py); history, diff and prune are in _history.py; copies
to and from files in _transfer.py; autosave in IPython in _autosave.py.
"""

from __future__ import annotations

from ._history import Checkpoint, Diff, diff, log, prune, retain
from ._record import Recorded, Reuse, checkout, checkpoint, record_session
from ._repo import Repo
from ._transfer import export_checkpoint, import_checkpoint

__all__ = ["Checkpoint", "Diff", "Recorded", "Repo", "Reuse", "checkout", "checkpoint", "diff",
           "export_checkpoint", "import_checkpoint", "log", "prune", "record_session", "retain"]
