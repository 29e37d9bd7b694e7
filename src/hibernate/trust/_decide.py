"""The one trust decision, for files, snapshots, checkpoints, exports, imports and the shell.

A manifest is trusted when the caller says so (``trust=True``), when its signature verifies
with one of the user's keys, or when its canonical digest is on the user's trust list
(``hibernate trust FILE``). Nothing is ever signed with the user's key unless it was trusted
by its own signature: copies (export, import, checkout to a file) carry the signature they
had, or none.
"""

from __future__ import annotations

from typing import Protocol

from ._keys import Signature, is_trusted

__all__ = ["is_trusted_manifest", "may_sign"]


class _Signed(Protocol):
    @property
    def signature(self) -> str: ...

    @property
    def manifest_digest(self) -> str: ...


def is_trusted_manifest(manifest: _Signed, trust: bool = False) -> bool:
    """Whether code from this manifest's groups may run on load."""
    return (trust or manifest.signature == Signature.VALID
            or bool(manifest.manifest_digest and is_trusted(manifest.manifest_digest)))


def may_sign(manifest: _Signed) -> bool:
    """A copy may be signed afresh (only when a format change forces a new signature, as a
    v1 file imported into a store) only if the user's own key signed the original."""
    return manifest.signature == Signature.VALID
