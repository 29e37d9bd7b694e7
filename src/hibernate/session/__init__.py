"""The session layer: which names a session has and how each is kept (naming rules,
identity and groups, capture into a chunk writer), and how they come back (restore, stage,
bind; lazy snapshots). It knows neither files nor stores: it writes to a ``ChunkWriter``
and reads through a ``BlobReader``."""

from __future__ import annotations

from ._capture import (
    Plan,
    WrittenGroup,
    estimate_bytes,
    plan,
    type_name,
    write_groups,
    write_session,
)
from ._meta import VERSION, session_info
from ._naming import Selector, ipython_hidden, is_dunder, is_plain_name, namespace_of
from ._restore import NeedsCode, Restorer, restore, restore_from, static_reference
from ._snapshot import Snapshot

__all__ = ["VERSION", "NeedsCode", "Plan", "Restorer", "Selector", "Snapshot", "WrittenGroup",
           "estimate_bytes",
           "ipython_hidden", "is_dunder", "is_plain_name", "namespace_of", "plan", "restore",
           "restore_from", "session_info", "static_reference", "type_name", "write_groups",
           "write_session"]
