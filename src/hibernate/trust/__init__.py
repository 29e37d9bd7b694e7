"""The trust layer: keys and signatures, the trust list, the one trust decision, the
restricted unpickler and the pickle opcode scan. It knows no file layout."""

from __future__ import annotations

from ._decide import is_trusted_manifest, may_sign
from ._keys import (
    Key,
    Signature,
    SignatureStatus,
    add_trusted,
    derive_soon,
    is_trusted,
    rotate_key,
    seal,
    user_key,
    user_keys,
    verify,
)

__all__ = ["Key", "Signature", "SignatureStatus", "add_trusted", "derive_soon", "is_trusted",
           "is_trusted_manifest", "may_sign", "rotate_key", "seal", "user_key", "user_keys",
           "verify"]
