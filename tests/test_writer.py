"""The one chunk writer placing chunks in a thread of its own (speed issue, item 1): the
same blobs and bytes as placing them in the caller's thread, marks and rollbacks in call
order, a failed placement raised to the caller (never lost, never a hang), memory bounded."""

from __future__ import annotations

import random
import threading

import pytest

from hibernate.format import ChunkWriter
from hibernate.format._manifest import Chunk
from hibernate.format._writer import AHEAD_BYTES


class MemorySink:
    """Chunks appended to one bytearray (a file's layout without the header)."""

    def __init__(self, fail_after: int | None = None) -> None:
        self.data = bytearray()
        self.puts = 0
        self.fail_after = fail_after
        self.threads: set[str] = set()

    def put(self, digest: str, raw: int, stored: bytes | memoryview, codec: str) -> Chunk:
        self.threads.add(threading.current_thread().name)
        if self.fail_after is not None and self.puts >= self.fail_after:
            raise OSError(28, "No space left on device")
        self.puts += 1
        chunk = Chunk(len(self.data), raw, len(stored), codec, digest)
        self.data += stored
        return chunk

    def known(self, digest: str, raw: int) -> Chunk | None:
        return None

    def mark(self) -> int:
        return len(self.data)

    def rewind(self, mark: int) -> None:
        del self.data[mark:]


def _script(writer: ChunkWriter, seed: int) -> list[int]:
    """Blobs of assorted sizes, streams written in odd pieces, and marks rolled back."""
    rng = random.Random(seed)
    kept = []
    for step in range(40):
        mark = writer.mark()
        size = rng.choice([0, 10, 70_000, 300_000, 1_000_003])
        payload = bytes([step % 251]) * size
        if rng.random() < 0.5:
            kept.append(writer.add_blob(payload))
        else:
            stream = writer.open_stream()
            for i in range(0, size, 77_777):
                stream.write(payload[i:i + 77_777])
            kept.append(stream.close())
        if rng.random() < 0.2:  # a value that failed: its bytes taken back
            writer.rollback(mark)
            kept.pop()
    return kept


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_background_placement_writes_what_the_caller_thread_writes(seed: int) -> None:
    here, there = MemorySink(), MemorySink()
    a = ChunkWriter(here, chunk_size=256 << 10)
    b = ChunkWriter(there, chunk_size=256 << 10, background=True)
    assert _script(a, seed) == _script(b, seed)
    assert [len(x) for x in (a.blobs, b.blobs)] and a.blobs == b.blobs
    assert here.data == there.data
    assert here.threads == {threading.current_thread().name}
    assert there.threads and threading.current_thread().name not in there.threads
    b.close()


def test_a_failed_placement_is_raised_to_the_caller_and_close_does_not_hang() -> None:
    writer = ChunkWriter(MemorySink(fail_after=3), chunk_size=64 << 10, background=True)
    with pytest.raises(OSError, match="No space"):
        for _ in range(200):  # some later call (or blobs) meets the failure
            writer.add_blob(bytes(100_000))
        writer.blobs  # noqa: B018
    writer.close()
    writer.close()  # idempotent


def test_queued_bytes_stay_bounded() -> None:
    gate = threading.Event()
    seen: list[int] = []

    class SlowSink(MemorySink):
        def put(self, digest: str, raw: int, stored: bytes | memoryview, codec: str) -> Chunk:
            gate.wait(5)
            return super().put(digest, raw, stored, codec)

    writer = ChunkWriter(SlowSink(), chunk_size=1 << 20, background=True)
    done = threading.Event()

    def feed() -> None:
        for _ in range(200):  # 200 MiB, far past the bound
            writer.add_blob(bytes(1 << 20))
            seen.append(writer._queued_bytes)
        done.set()

    t = threading.Thread(target=feed)
    t.start()
    assert not done.wait(0.5)  # the caller is held back while nothing is placed
    assert max(seen) <= AHEAD_BYTES
    gate.set()
    t.join(30)
    assert done.is_set() and max(seen) <= AHEAD_BYTES + (1 << 20)
    writer.blobs  # noqa: B018
    writer.close()
