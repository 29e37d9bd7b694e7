"""The exceptions hibernate raises.

Every error that hibernate raises on purpose derives from one root, so that callers can
catch ``hibernate.HibernateError`` and nothing else::

    HibernateError
    ├── FormatError           not a hibernate file, truncated, bad header/trailer/manifest
    │   └── VersionError      written by a newer format version than this hibernate reads
    ├── IntegrityError        a chunk digest, manifest digest or signature does not match
    ├── UntrustedFileError    loading would unpickle data from a file the user has not trusted
    ├── StorageError          the bytes could not be read or written (wraps the OSError)
    ├── EngineError           a distributed engine could not write or read a value's data
    └── PlaceholderError      a restored Placeholder was used (it stands for what was not saved)

Errors about one entry's data (a damaged blob, a value that fails to restore) are not
raised: they are listed in ``LoadReport.failed`` and the other entries load.
"""

from __future__ import annotations

__all__ = [
    "EngineError",
    "FormatError",
    "HibernateError",
    "IntegrityError",
    "PlaceholderError",
    "StorageError",
    "UntrustedFileError",
    "VersionError",
]


class HibernateError(Exception):
    """Root of every error hibernate raises on purpose."""


class FormatError(HibernateError):
    """The bytes are not a readable hibernate file (foreign, truncated or malformed)."""


class VersionError(FormatError):
    """The file was written by a newer format version than this hibernate can read."""


class IntegrityError(HibernateError):
    """A digest or signature does not match the bytes it covers."""


class UntrustedFileError(HibernateError):
    """Loading would unpickle (run code from) a file the user has not chosen to trust.

    ``names`` lists the entries that need unpickling.
    """

    def __init__(self, message: str, names: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.names = names


class StorageError(HibernateError):
    """The bytes could not be read or written; ``__cause__`` is the underlying OSError."""


class PlaceholderError(HibernateError, AttributeError):
    """A ``hibernate.Placeholder`` was used: it stands in a restored group for an object
    that could not be saved, and every use of it raises this with the reason. (It is an
    ``AttributeError`` too, so ``hasattr`` and display hooks that probe attributes see
    "no such attribute" instead of failing.)"""


class EngineError(HibernateError):
    """A distributed engine (Dask, Spark) could not write or read a value's data, or the
    engine a value needs is not running."""
