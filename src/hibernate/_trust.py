"""Keys and signatures: who wrote a file, and whether its bytes were changed since.

A file is signed with HMAC-SHA256 over its header and its exact manifest bytes (which hold
every chunk digest). The key is ``HIBERNATE_KEY`` when set (services, CI, a team sharing a
key), else a random 32-byte key made on first use in the user's config directory
(``HIBERNATE_CONFIG_DIR`` overrides the directory). A key id stored beside the signature
tells "signed with another key" apart from "tampered".

Non-goals (for now): key rotation, the trust list, opcode inspection.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass

from .errors import HibernateError, IntegrityError

__all__ = ["Key", "SignatureStatus", "user_key", "verify"]

KEY_FILE = "key"
KEY_ID_LEN = 16
MAC_LEN = 32


@dataclass(frozen=True)
class Key:
    secret: bytes = b""

    @property
    def id(self) -> bytes:
        return hashlib.sha256(b"hibernate-key-id\0" + self.secret).digest()[:KEY_ID_LEN]

    def sign(self, data: bytes) -> bytes:
        return hmac.new(self.secret, data, hashlib.sha256).digest()


def config_dir() -> str:
    override = os.environ.get("HIBERNATE_CONFIG_DIR")
    if override:
        return override
    import platformdirs

    return platformdirs.user_config_dir("hibernate", appauthor=False)


def user_key() -> Key:
    """The user's signing key: ``HIBERNATE_KEY`` or the key file (created once, mode 0600)."""
    env = os.environ.get("HIBERNATE_KEY")
    if env:
        return Key(env.encode("utf-8"))
    path = os.path.join(config_dir(), KEY_FILE)
    try:
        with open(path, "rb") as f:
            secret = f.read()
    except FileNotFoundError:
        secret = _create_key_file(path)
    except OSError as e:
        raise HibernateError(f"cannot read the signing key {path}: {e}") from e
    if len(secret) < 16:
        raise HibernateError(f"the signing key {path} is too short; remove it to make a new one")
    return Key(secret)


def _create_key_file(path: str) -> bytes:
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    secret = os.urandom(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first: use theirs
        with open(path, "rb") as f:
            return f.read()
    with os.fdopen(fd, "wb") as f:
        f.write(secret)
        f.flush()
        os.fsync(f.fileno())
    return secret


class SignatureStatus:
    VALID = "valid"          # signed with the user's key and the bytes are unchanged
    FOREIGN = "foreign"      # signed with a key the user does not have
    UNSIGNED = "unsigned"


def verify(key_id: bytes, mac: bytes, signed_data: bytes, key: Key) -> str:
    """Check a file's signature; IntegrityError if it is the user's key id but a wrong MAC."""
    if key_id == bytes(KEY_ID_LEN) and mac == bytes(MAC_LEN):
        return SignatureStatus.UNSIGNED
    if not hmac.compare_digest(key_id, key.id):
        return SignatureStatus.FOREIGN
    if not hmac.compare_digest(mac, key.sign(signed_data)):
        raise IntegrityError("the file's signature does not match its contents: it was "
                             "changed after it was saved")
    return SignatureStatus.VALID
