"""Which names a save or load takes: include/exclude patterns and the naming rules."""

from __future__ import annotations

import builtins
import fnmatch
import keyword
import re
import sys
import types
from collections.abc import Iterable
from typing import Any

__all__ = ["MACHINERY_MODULES", "Selector", "ipython_hidden", "ipython_internal", "is_dunder",
           "is_machinery", "is_plain_name", "machinery_reason", "namespace_of"]

# Types from these packages are the running shell's or kernel's machinery: never saved.
MACHINERY_MODULES = ("IPython", "ipykernel", "zmq", "jupyter_client", "comm", "traitlets")

_BUILTIN_NAMES = frozenset(dir(builtins))
_IPYTHON_NAMES = frozenset({"In", "Out", "get_ipython", "exit", "quit", "open", "_", "__", "___",
                            "_i", "_ii", "_iii", "_ih", "_oh", "_dh", "_exit_code"})
_IPYTHON_NUMBERED = re.compile(r"_i?\d+\Z")


def is_dunder(name: str) -> bool:
    return len(name) > 4 and name.startswith("__") and name.endswith("__")


def is_plain_name(name: str, *, builtins_too: bool = False) -> bool:
    """A name that is safe to bind from a file without being asked for by name.
    ``builtins_too``: the file is the user's own (signed with their key, on their trust
    list, or trusted for this load), so a name that shadows a builtin (``list``, ``input``,
    ``sum``) is bound as it was saved; from other files a builtin's name must be asked for."""
    return (name.isidentifier() and not keyword.iskeyword(name) and not is_dunder(name)
            and (builtins_too or name not in _BUILTIN_NAMES))


def ipython_internal(name: str) -> bool:
    return name in _IPYTHON_NAMES or bool(_IPYTHON_NUMBERED.match(name))


def is_machinery(obj: object) -> bool:
    """True for objects of IPython, ipykernel, zmq, jupyter_client, comm, traitlets types."""
    module = getattr(type(obj), "__module__", None) or ""
    return module.split(".", 1)[0] in MACHINERY_MODULES


def machinery_reason(obj: object) -> str | None:
    """Why a save refuses ``obj`` (it is the running shell's or kernel's), or None."""
    if not is_machinery(obj):
        return None
    t = type(obj)
    return (f"holds IPython/Jupyter machinery ({t.__module__}.{t.__qualname__}), which is "
            "never saved")


def ipython_hidden(ns: dict[str, object]) -> frozenset[str] | None:
    """When ``ns`` is a running IPython shell's user namespace: the names IPython keeps
    there for itself (In, Out, _ih, get_ipython, exit, _iN...). None otherwise."""
    import sys

    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is None or getattr(shell, "user_ns", None) is not ns:
        return None
    # IPython's own (In, Out, _ih, exit...), not whatever else it hides: %pylab puts numpy
    # and pylab's functions in user_ns_hidden too, and notebooks use them as their own
    return frozenset(n for n in ns if ipython_internal(n))


class Selector:
    """include/exclude as names or glob patterns; None means "everything" / "nothing"."""

    def __init__(self, include: Iterable[str] | str | None, exclude: Iterable[str] | str | None
                 ) -> None:
        self.include = _patterns(include)
        self.exclude = _patterns(exclude)

    def explicitly_included(self, name: str) -> bool:
        return self.include is not None and name in self.include

    def __call__(self, name: str) -> bool:
        if self.include is not None and not any(fnmatch.fnmatchcase(name, p)
                                                for p in self.include):
            return False
        return not (self.exclude and any(fnmatch.fnmatchcase(name, p) for p in self.exclude))


def _patterns(value: Iterable[str] | str | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return (value,)
    patterns = tuple(value)
    if not all(isinstance(p, str) for p in patterns):
        raise TypeError("include/exclude take names or glob patterns (strings)")
    return patterns


def namespace_of(namespace: dict[str, object] | types.ModuleType | None) -> dict[str, Any]:
    """The namespace a call means: ``None`` is the ``__main__`` module's dict (also the user
    namespace in IPython and a Jupyter kernel); a module means its dict."""
    if namespace is None:
        return sys.modules["__main__"].__dict__
    if isinstance(namespace, types.ModuleType):
        return namespace.__dict__
    if not isinstance(namespace, dict):
        raise TypeError("namespace must be a dict or a module")
    return namespace
