"""Read-ahead for full loads: in order, bounded, errors kept for the blob that had them."""

from __future__ import annotations

import threading
import time

import pytest

from hibernate.format import Prefetcher


class Reads:
    def __init__(self, bad: int | None = None) -> None:
        self.calls: list[tuple[int, str]] = []
        self.bad = bad
        self.lock = threading.Lock()

    def __call__(self, index: int) -> bytes:
        with self.lock:
            self.calls.append((index, threading.current_thread().name))
        if index == self.bad:
            raise OSError(f"blob {index} is damaged")
        return bytes([index])

    def indices(self) -> list[int]:
        with self.lock:
            return [i for i, _ in self.calls]


def settle(reads: Reads, count: int) -> list[int]:
    deadline = time.monotonic() + 5
    while len(reads.indices()) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.05)  # and nothing more arrives
    return reads.indices()


def test_reads_ahead_in_order_and_no_further_than_the_bound() -> None:
    reads = Reads()
    with Prefetcher(reads, [0, 1, 2, 3, 4, 1], [100] * 5, ahead=250) as fetch:
        assert settle(reads, 2) == [0, 1]  # a third blob would put 300 bytes ahead
        assert fetch(0) == b"\x00"
        assert settle(reads, 3) == [0, 1, 2]
        assert [fetch(i) for i in (1, 2, 3, 4)] == [bytes([i]) for i in (1, 2, 3, 4)]
    assert sorted(reads.indices()) == [0, 1, 2, 3, 4]  # each blob read once
    assert all(name.startswith("hibernate-read") for _, name in reads.calls)


def test_a_blob_larger_than_the_bound_is_still_read_ahead_alone() -> None:
    reads = Reads()
    with Prefetcher(reads, [0, 1], [1000, 1000], ahead=10) as fetch:
        assert settle(reads, 1) == [0]
        assert fetch(0) == b"\x00" and fetch(1) == b"\x01"


def test_errors_belong_to_their_blob_and_unknown_blobs_are_read_directly() -> None:
    reads = Reads(bad=1)
    with Prefetcher(reads, [0, 1, 2, 99], [10, 10, 10], ahead=1000) as fetch:
        with pytest.raises(OSError, match="blob 1 is damaged"):
            fetch(1)
        assert fetch(0) == b"\x00" and fetch(2) == b"\x02"
        assert fetch(5) == b"\x05"  # never planned: read in the caller's thread
    assert (5, threading.current_thread().name) in reads.calls
    assert 99 not in reads.indices()  # not a blob of this file: left to the direct read
