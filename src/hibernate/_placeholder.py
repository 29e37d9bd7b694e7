"""Placeholder: what a restored group holds where an object could not be saved.

When one member of a group cannot be pickled (``pair = [arr, lock]``), the group is saved
with a ``Placeholder`` in that member's place, so the other members and the identity among
them survive (``pair[0] is arr``). A placeholder names the type it stands for and why that
was not saved, and raises ``PlaceholderError`` with that reason on any use: attribute
access, calls, iteration, indexing, truth, arithmetic. Its ``repr`` works (so a notebook can
show it), and it pickles as itself, so a session that holds one can be saved again.
It is plain data (two strings): ``data_only`` loads restore it too.
"""

from __future__ import annotations

from typing import Any, NoReturn

from .errors import PlaceholderError

__all__ = ["Placeholder"]

_MAX_TEXT = 1000


class Placeholder:
    __slots__ = ("reason", "type_name")

    def __init__(self, type_name: str, reason: str) -> None:
        if not isinstance(type_name, str) or not isinstance(reason, str):
            raise TypeError("a Placeholder holds two strings")
        object.__setattr__(self, "type_name", type_name[:_MAX_TEXT])
        object.__setattr__(self, "reason", reason[:_MAX_TEXT])

    def _fail(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise PlaceholderError(f"this is a placeholder for a {self.type_name} that was not "
                               f"saved ({self.reason}); recreate it")

    def __getattr__(self, name: str) -> NoReturn:
        self._fail()

    def __setattr__(self, name: str, value: object) -> NoReturn:
        self._fail()

    def __repr__(self) -> str:
        return f"<hibernate.Placeholder for {self.type_name}: {self.reason}>"

    def __reduce__(self) -> tuple[Any, ...]:
        return (Placeholder, (self.type_name, self.reason))

    __call__ = __iter__ = __len__ = __getitem__ = __setitem__ = __delitem__ = _fail
    __contains__ = __enter__ = __exit__ = __bool__ = __index__ = __int__ = _fail
    __float__ = __add__ = __sub__ = __mul__ = __truediv__ = __lt__ = __gt__ = _fail
    __le__ = __ge__ = __next__ = __await__ = __aiter__ = __fspath__ = _fail
