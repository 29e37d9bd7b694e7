"""The words a manifest uses, as enums: entry kinds, how an entry comes back, skip codes
and the format's feature flags (signature statuses are trust's: ``trust.Signature``).

They are ``str`` enums, so a manifest's JSON holds the plain words and ``kind == "value"``
still holds; every module compares against these names, never against loose literals.
"""

from __future__ import annotations

from enum import Enum

__all__ = ["FEATURES", "Feature", "How", "Kind", "SkipCode"]


class _Words(str, Enum):
    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)


class Kind(_Words):
    """What a name was in the saved namespace."""

    MODULE = "module"    # a module: ``import numpy as np``
    IMPORT = "import"    # an importable object: ``from collections import Counter``
    VALUE = "value"      # serialized in a group
    SKIPPED = "skipped"  # not saved, with a reason


class How(_Words):
    """How an entry comes back on load (format v2 records it for every entry)."""

    STORED = "stored"            # deserialized from its group's bytes
    REFERENCE = "reference"      # imported by name
    REOPENED = "reopened"        # a live resource reopened by its own rules (later issues)
    REPLAYED = "replayed"        # recomputed from recorded cells (later issues)
    ENGINE = "engine"            # written and read by a distributed engine (later issues)
    PLACEHOLDER = "placeholder"  # a group member that could not be stored: raises on use
    LOST = "lost"                # not saved; the entry's skip says why

    @classmethod
    def of_kind(cls, kind: str) -> How:
        """What a v1 entry (which has no ``how``) means."""
        return {Kind.VALUE: cls.STORED, Kind.MODULE: cls.REFERENCE,
                Kind.IMPORT: cls.REFERENCE}.get(Kind(kind), cls.LOST)


class SkipCode(_Words):
    """Why a name was not saved or not restored."""

    DUNDER = "dunder"
    EXCLUDED = "excluded"
    IPYTHON_INTERNAL = "ipython-internal"
    NAMESPACE = "namespace"
    UNPICKLABLE = "unpicklable"
    UNIMPORTABLE_MODULE = "unimportable-module"
    UNTRUSTED = "untrusted"
    NOT_SAVED = "not-saved"
    NOT_SELECTED = "not-selected"
    UNSAFE_NAME = "unsafe-name"
    REFERENCE = "reference"
    PLACEHOLDER = "placeholder"
    ENGINE = "engine"  # a distributed engine's value this save did not write (engines=...)


class Feature(_Words):
    """What a reader must support to read a file; the header carries them as bits."""

    BLAKE3 = "blake3"              # chunk digests are BLAKE3
    ZSTD = "zstd"                  # some chunks are zstd-compressed
    PLACEHOLDERS = "placeholders"  # some groups hold hibernate.Placeholder objects
    ENGINES = "engines"            # some entries' data was written by a distributed engine


# feature -> (header bit, the first hibernate version that reads it)
FEATURES: dict[Feature, tuple[int, str]] = {
    Feature.BLAKE3: (1 << 0, "0.2.0"),
    Feature.ZSTD: (1 << 1, "0.2.0"),
    Feature.PLACEHOLDERS: (1 << 2, "0.2.0"),
    Feature.ENGINES: (1 << 3, "0.2.1"),
}
