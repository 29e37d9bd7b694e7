"""Local-disk store: pinned file descriptors for reads, temp file + rename for writes.

A write goes to ``.<name>.<pid>-<random>.hib-tmp`` in the target's directory, is flushed
and fsynced, renamed over the target and the directory is fsynced. A failed or interrupted
write removes its temp file; a later write removes temp files whose writer process is gone
(never those of a live writer). The previous file at the path is never touched until the
rename, so a crash at any point leaves either the old file or the new one.
"""

from __future__ import annotations

import os
import re
import secrets
import stat
import threading
import weakref
from collections.abc import Iterator

from ..errors import StorageError
from ._base import ReadHandle, Store, WriteHandle

__all__ = ["LocalStore"]

TMP_SUFFIX = ".hib-tmp"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class LocalReadHandle(ReadHandle):
    def __init__(self, path: str) -> None:
        try:
            self._fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        except OSError as e:
            raise StorageError(f"cannot open {path}: {e.strerror or e}") from e
        self._closer = weakref.finalize(self, os.close, self._fd)  # closes it if forgotten
        self._map: memoryview | None = None
        try:
            self.size = os.fstat(self._fd).st_size
        except OSError as e:
            self.close()
            raise StorageError(f"cannot open {path}: {e.strerror or e}") from e
        self.path = path

    def read(self, start: int, length: int) -> bytes:
        buf = bytearray(length)
        self.readinto(start, memoryview(buf))
        return bytes(buf)

    def readinto(self, start: int, buf: memoryview) -> None:
        if start < 0 or start + len(buf) > self.size:
            raise StorageError(f"{self.path}: read of {len(buf)} bytes at {start} is past the end")
        done = 0
        try:
            while done < len(buf):
                n = os.preadv(self._fd, [buf[done:]], start + done)
                if n == 0:
                    raise StorageError(f"{self.path}: file shrank while reading")
                done += n
            self.bytes_read += done
        except OSError as e:
            raise StorageError(f"cannot read {self.path}: {e.strerror or e}") from e

    def map(self) -> memoryview:
        """The whole file memory-mapped copy-on-write: writes to it never reach the file."""
        if self._map is None:
            import mmap

            try:
                self._map = memoryview(mmap.mmap(self._fd, 0, access=mmap.ACCESS_COPY))
            except (OSError, ValueError) as e:
                raise StorageError(f"cannot memory-map {self.path}: {e}") from e
        return self._map

    def close(self) -> None:
        self._closer()
        self._fd = -1


SYNC_EVERY = 64 << 20  # start writing back dirty pages every this many bytes written


class LocalWriteHandle(WriteHandle):
    """Writes go through ``os.write`` on a raw descriptor: every write, fsync and rename is
    one system call whose failure fails the save (a failed fsync is never retried).

    Every ``SYNC_EVERY`` bytes an ``fdatasync`` starts in a thread (unless one still runs),
    so the disk writes the file back while the saver goes on producing bytes, instead of
    all at the final ``fsync`` (a machine with much memory holds gigabytes of dirty pages
    before the kernel starts on its own). A failed early sync fails the save at commit."""

    can_truncate = True

    def __init__(self, path: str) -> None:
        self.path = path
        d, name = os.path.split(os.path.abspath(path))
        self._dir = d
        try:
            os.makedirs(d, exist_ok=True)
        except OSError as e:
            raise StorageError(f"cannot make the directory {d}: {e.strerror or e}") from e
        _remove_stale_temps(d, name)
        self.tmp = os.path.join(d, f".{name}.{os.getpid()}-{secrets.token_hex(4)}{TMP_SUFFIX}")
        try:
            self._fd = os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except OSError as e:
            raise StorageError(f"cannot create {self.tmp}: {e.strerror or e}") from e
        self._unsynced = 0
        self._syncing: threading.Thread | None = None
        self._sync_error: OSError | None = None

    def write(self, data: bytes | memoryview) -> None:
        view = memoryview(data).cast("B")
        self._unsynced += len(view)
        try:
            while view:
                view = view[os.write(self._fd, view):]
        except OSError as e:
            raise StorageError(f"cannot write {self.tmp}: {e.strerror or e}") from e
        if self._unsynced >= SYNC_EVERY and (self._syncing is None
                                             or not self._syncing.is_alive()):
            self._unsynced = 0
            syncing = threading.Thread(target=self._sync_early, args=(self._fd,),
                                       name="hibernate-sync")
            try:
                syncing.start()
            except RuntimeError:  # at interpreter exit: the final fsync does it all
                return
            self._syncing = syncing

    def _sync_early(self, fd: int) -> None:
        try:
            os.fdatasync(fd)
        except OSError as e:
            self._sync_error = e

    def _wait_sync(self) -> None:
        if self._syncing is not None:
            self._syncing.join()
            self._syncing = None

    def truncate(self, size: int) -> None:
        try:
            os.ftruncate(self._fd, size)
            os.lseek(self._fd, size, os.SEEK_SET)
        except OSError as e:
            raise StorageError(f"cannot truncate {self.tmp}: {e.strerror or e}") from e

    def commit(self) -> None:
        try:
            self._wait_sync()
            if self._sync_error is not None:  # never retried: its pages may be lost
                raise self._sync_error
            try:  # the file it replaces keeps its mode (a 0600 session stays 0600)
                os.fchmod(self._fd, stat.S_IMODE(os.stat(self.path).st_mode))
            except FileNotFoundError:
                pass
            os.fsync(self._fd)
            fd, self._fd = self._fd, -1
            os.close(fd)
            os.replace(self.tmp, self.path)
        except OSError as e:
            self.discard()
            raise StorageError(f"cannot save {self.path}: {e.strerror or e}") from e
        try:
            dfd = os.open(self._dir, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        except OSError as e:  # the file is in place; the rename may not be durable yet
            raise StorageError(f"saved {self.path} but could not fsync its directory: {e}") from e

    def discard(self) -> None:
        self._wait_sync()  # its descriptor is closed next
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            try:
                os.close(fd)
            except OSError:
                pass
        try:
            os.unlink(self.tmp)
        except FileNotFoundError:
            pass


def _fsync_dir(directory: str) -> None:
    try:
        dfd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError as e:
        raise StorageError(f"could not fsync the directory {directory}: {e}") from e


def _remove_stale_temps(directory: str, name: str) -> None:
    """Remove temp files for ``name`` left by writers whose process no longer exists."""
    pattern = re.compile(rf"\.{re.escape(name)}\.(\d+)-[0-9a-f]{{8}}{re.escape(TMP_SUFFIX)}")
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for f in names:
        m = pattern.fullmatch(f)
        if m and int(m.group(1)) != os.getpid() and not _pid_alive(int(m.group(1))):
            try:
                os.unlink(os.path.join(directory, f))
            except OSError:
                pass


class LocalStore(Store):
    """Files below a root directory; keys are relative paths."""

    atomic_create = True

    def __init__(self, root: str = ".") -> None:
        self.root = root

    def _path(self, key: str) -> str:
        return os.path.join(self.root, key)

    def open_read(self, key: str) -> ReadHandle:
        return LocalReadHandle(self._path(key))

    def open_write(self, key: str) -> WriteHandle:
        return LocalWriteHandle(self._path(key))

    def exists(self, key: str) -> bool:
        return os.path.exists(self._path(key))

    def create(self, key: str, data: bytes | memoryview, durable: bool = True) -> bool:
        """Write ``key`` only if absent, atomically and exclusively: a complete temp file is
        hard-linked into place (``link`` fails if the name exists), so no reader ever sees a
        partial object and of two racing writers exactly one wins."""
        path = self._path(key)
        out = LocalWriteHandle(path)
        try:
            out.write(data)
            if durable:
                os.fsync(out._fd)
            os.link(out.tmp, path)
        except FileExistsError:
            return False
        except OSError as e:
            raise StorageError(f"cannot create {key}: {e.strerror or e}") from e
        finally:
            out.discard()
        if durable:
            _fsync_dir(os.path.dirname(path))
        return True

    def delete(self, key: str) -> None:
        try:
            os.unlink(self._path(key))
        except FileNotFoundError:
            pass
        except OSError as e:
            raise StorageError(f"cannot delete {key}: {e.strerror or e}") from e

    def list(self, prefix: str = "") -> Iterator[str]:
        top = os.path.join(self.root, os.path.dirname(prefix))  # walk only below the prefix
        for dirpath, _, files in os.walk(top):
            for f in files:
                key = os.path.relpath(os.path.join(dirpath, f), self.root)
                if key.startswith(prefix) and not f.endswith(TMP_SUFFIX):
                    yield key
