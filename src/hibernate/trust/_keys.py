"""Keys and signatures: who wrote a file, and whether its bytes were changed since.

A format-v2 file or checkpoint is signed with HMAC-SHA256 over the canonical form of its
manifest (which holds every chunk digest; see ``format.canonical_bytes``). The MAC key and
the key id are both derived from the user's key by scrypt (memory-hard; computed once per
process), so neither is a fast offline test of a guessed key. Format v1 signed the header and
the exact manifest bytes with the key itself and named it by a SHA-256 of it; those files
still verify (``legacy=True``), and nothing new is signed that way.

The key is ``HIBERNATE_KEY`` when set (hex or base64 of at least 16 random bytes; a
passphrase is refused; for services, CI, a team sharing a
key), else a random 32-byte key made on first use in the user's config directory
(``HIBERNATE_CONFIG_DIR`` overrides the directory). A key id stored beside the signature
tells "signed with another key" apart from "tampered".

Keys can be rotated: the old key is kept (``<config>/retired/``) so files it signed still
verify. A file signed with someone else's key can be trusted by its manifest digest (the
trust list ``<config>/trusted``), which works for read-only and remote files alike.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import secrets
import threading
from dataclasses import dataclass
from enum import Enum

from ..errors import HibernateError, IntegrityError, StorageError

__all__ = ["Key", "Signature", "SignatureStatus", "add_trusted", "derive_soon", "is_trusted",
           "new_key_text",
           "parse_key", "rotate_key", "seal", "user_key", "user_keys", "verify"]

KEY_FILE = "key"
RETIRED_DIR = "retired"
TRUST_FILE = "trusted"
KEY_ID_LEN = 16
MAC_LEN = 32


# scrypt's cost: 32 MiB and about 0.1 s per key and process, so a guess costs as much.
KDF = {"n": 1 << 15, "r": 8, "p": 1, "maxmem": 64 << 20}
KDF_SALT = b"hibernate signing key v2"
_derived: dict[bytes, tuple[bytes, bytes]] = {}
_deriving: dict[bytes, threading.Thread] = {}


def _derive(secret: bytes) -> tuple[bytes, bytes]:
    """(MAC key, key id) for a secret, derived once per process (waiting for a derivation
    ``derive_soon`` started)."""
    found = _derived.get(secret)
    if found is None:
        running = _deriving.get(secret)
        if running is not None and running is not threading.current_thread():
            running.join()
        found = _derived.get(secret)
    if found is None:
        out = hashlib.scrypt(secret, salt=KDF_SALT, dklen=32 + KEY_ID_LEN, **KDF)
        found = _derived[secret] = (out[:32], out[32:])
    return found


def derive_soon() -> None:
    """Start deriving the signing key in a thread (scrypt releases the GIL), so that a save
    pickles and writes while it runs instead of paying it at the end. Errors (a refused
    key...) are left to the call that needs the key."""
    try:
        secret = user_key().secret
    except HibernateError:
        return
    if secret in _derived or secret in _deriving:
        return

    def run() -> None:
        try:
            _derive(secret)
        except Exception:  # the caller derives it again, and meets the error itself
            pass

    # not a daemon: the interpreter waits for it at exit (a daemon thread inside scrypt while
    # the interpreter finalizes can crash the process)
    thread = threading.Thread(target=run, name="hibernate-kdf")
    try:
        thread.start()
    except RuntimeError:  # at interpreter exit: derived when needed instead
        return
    _deriving[secret] = thread


@dataclass(frozen=True)
class Key:
    """A signing key. ``legacy``: the bytes format 1 signed with (the variable's text for
    ``HIBERNATE_KEY``); the same as ``secret`` for a key file."""

    secret: bytes = b""
    legacy: bytes | None = None

    @property
    def id(self) -> bytes:
        return _derive(self.secret)[1]

    def sign(self, data: bytes) -> bytes:
        return hmac.new(_derive(self.secret)[0], data, hashlib.sha256).digest()

    @property
    def legacy_id(self) -> bytes:
        """The key id format v1 recorded (a fast hash of the key: only for reading)."""
        return hashlib.sha256(b"hibernate-key-id\0" + self._legacy).digest()[:KEY_ID_LEN]

    def legacy_sign(self, data: bytes) -> bytes:
        return hmac.new(self._legacy, data, hashlib.sha256).digest()

    @property
    def _legacy(self) -> bytes:
        return self.secret if self.legacy is None else self.legacy


_HEX = re.compile(r"(?:[0-9a-fA-F]{2}){16,}\Z")
_B64 = re.compile(r"[A-Za-z0-9+/_-]{22,}={0,2}\Z")
REFUSED = ("HIBERNATE_KEY must be hex (at least 32 digits) or base64/base64url (at least 22 "
           "characters) of at least 16 random bytes; `hibernate key new` prints one to share. "
           "A passphrase is refused: the key id in every file would let anyone test guesses "
           "offline. Files signed with a refused key stay readable: trust each with "
           "`hibernate trust FILE` (or load it with trust=True).")


def parse_key(text: str) -> bytes:
    """The secret bytes of a ``HIBERNATE_KEY`` value (hex, else base64 or base64url);
    HibernateError for anything else, or for fewer than 16 bytes."""
    t = text.strip()
    secret = b""
    if _HEX.match(t):
        secret = bytes.fromhex(t)
    elif _B64.match(t):
        body = t.rstrip("=").replace("-", "+").replace("_", "/")
        try:
            secret = base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
        except (binascii.Error, ValueError):
            secret = b""
    if len(secret) < 16:
        raise HibernateError(REFUSED)
    return secret


def new_key_text() -> str:
    """A fresh key to put in ``HIBERNATE_KEY``: 32 random bytes, base64url."""
    return base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")


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
        return Key(parse_key(env), legacy=env.encode("utf-8"))
    path = os.path.join(config_dir(), KEY_FILE)
    try:
        with open(path, "rb") as f:
            secret = f.read()
    except FileNotFoundError:
        secret = _create_key_file(path)
    except OSError as e:
        raise StorageError(f"cannot read the signing key {path}: {e}") from e
    if len(secret) < 16:
        raise HibernateError(f"the signing key {path} is too short; remove it to make a new one")
    return Key(secret)


def _create_key_file(path: str) -> bytes:
    """Write a new key where no key is: a complete temp file is linked into place, so a
    racing process either wins or reads the winner's complete key; never overwritten."""
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    secret = os.urandom(32)
    tmp = f"{path}.{os.getpid()}-{secrets.token_hex(4)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(secret)
            f.flush()
            os.fsync(f.fileno())
        os.link(tmp, path)
    except FileExistsError:  # another process made it first: use theirs
        with open(path, "rb") as f:
            return f.read()
    finally:
        os.unlink(tmp)
    return secret


class Signature(str, Enum):
    """A file's or checkpoint's signature, as checked against the user's keys."""

    VALID = "valid"          # signed with one of the user's keys; the bytes are unchanged
    FOREIGN = "foreign"      # signed with a key the user does not have
    UNSIGNED = "unsigned"
    UNCHECKED = "unchecked"  # read without keys (nothing was verified)

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)


SignatureStatus = Signature  # the name this module used before the enum


def user_keys() -> list[Key]:
    """The current key first, then retired ones (which still verify, never sign)."""
    keys = [user_key()]
    retired = os.path.join(config_dir(), RETIRED_DIR)
    try:
        names = sorted(os.listdir(retired))
    except OSError:
        return keys
    for name in names:
        try:
            with open(os.path.join(retired, name), "rb") as f:
                secret = f.read()
        except OSError:
            continue
        if len(secret) >= 16:
            keys.append(Key(secret))
    return keys


def rotate_key() -> Key:
    """Retire the key file's key (kept for verification) and make a new one."""
    if os.environ.get("HIBERNATE_KEY"):
        raise HibernateError("HIBERNATE_KEY is set: rotate it where it is managed; to keep "
                             "verifying old files, keep the old value in the key file's "
                             "retired/ directory")
    old = user_key()
    path = os.path.join(config_dir(), KEY_FILE)
    retired = os.path.join(config_dir(), RETIRED_DIR)
    os.makedirs(retired, mode=0o700, exist_ok=True)
    target = os.path.join(retired, old.id.hex() + ".key")
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(old.secret)
        f.flush()
        os.fsync(f.fileno())
    os.unlink(path)
    return Key(_create_key_file(path))


def _trust_path() -> str:
    return os.path.join(config_dir(), TRUST_FILE)


def is_trusted(manifest_digest: str) -> bool:
    """True when the manifest digest (hex SHA-256) is on the user's trust list."""
    try:
        with open(_trust_path(), encoding="utf-8") as f:
            return any(line.split(maxsplit=1)[:1] == [manifest_digest] for line in f)
    except OSError:
        return False


def add_trusted(manifest_digest: str, note: str = "") -> None:
    """Add a manifest digest to the trust list (appending one line; idempotent)."""
    if is_trusted(manifest_digest):
        return
    os.makedirs(config_dir(), mode=0o700, exist_ok=True)
    clean = " ".join(note.split())[:200]
    fd = os.open(_trust_path(), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as f:
        f.write(f"{manifest_digest}  {clean}\n")


def verify(key_id: bytes, mac: bytes, signed_data: bytes, keys: list[Key],
           legacy: bool = False) -> Signature:
    """Check a signature; IntegrityError if it names one of the user's keys but the MAC
    does not match (the bytes were changed after they were signed). ``legacy``: a format-v1
    signature (key id and MAC from the raw key)."""
    if key_id == bytes(KEY_ID_LEN) and mac == bytes(MAC_LEN):
        return Signature.UNSIGNED
    key = next((k for k in keys if hmac.compare_digest(
        key_id, k.legacy_id if legacy else k.id)), None)
    if key is None:
        return Signature.FOREIGN
    expected = key.legacy_sign(signed_data) if legacy else key.sign(signed_data)
    if not hmac.compare_digest(mac, expected):
        raise IntegrityError("the signature does not match the contents: they were "
                             "changed after they were signed")
    return Signature.VALID


def seal(data: bytes) -> tuple[bytes, bytes]:
    """(key id, MAC) of ``data`` under the user's key."""
    key = user_key()
    return key.id, key.sign(data)
