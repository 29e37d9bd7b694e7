"""An unpickler that runs no code from the file: only builtin data types may be named.

``find_class`` allows an explicit list of data types (containers and scalars) whose
construction from pickled arguments cannot run anything else; every other global, and
persistent ids, are refused with ``RefusedGlobal`` naming what was asked for. Never allowed:
callables such as ``eval``, ``exec``, ``getattr``, ``__import__``, ``os.system``, or any
reconstructor (``copyreg``, cloudpickle's, hibernate's own).
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Sequence
from typing import Any

__all__ = ["ALLOWED", "RefusedGlobal", "restricted_loads"]

ALLOWED: frozenset[tuple[str, str]] = frozenset(
    [("builtins", n) for n in ("bool", "bytearray", "bytes", "complex", "dict", "float",
                               "frozenset", "int", "list", "range", "set", "slice", "str",
                               "tuple")]
    + [("datetime", n) for n in ("date", "datetime", "time", "timedelta", "timezone")]
    + [("decimal", "Decimal"), ("collections", "OrderedDict")]
    # two strings, bounded; it runs nothing (see hibernate/_placeholder.py)
    + [("hibernate._placeholder", "Placeholder")]
)


class RefusedGlobal(pickle.UnpicklingError):
    """The pickle names a global that a data-only load does not allow."""

    def __init__(self, module: str, name: str) -> None:
        super().__init__(f"needs code: {module}.{name}")
        self.module, self.name = module, name


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in ALLOWED:
            raise RefusedGlobal(module, name)
        return super().find_class(module, name)

    def persistent_load(self, pid: Any) -> Any:
        raise RefusedGlobal("persistent id", str(pid)[:40])


def restricted_loads(stream: bytes | bytearray | memoryview, buffers: Sequence[Any] = ()
                     ) -> object:
    return _Unpickler(io.BytesIO(stream), buffers=buffers).load()
