"""The byte budget that keeps a backup's memory flat however big the topic.

Why this module exists: the consuming thread hands sealed blocks to
compression and upload threads much faster than storage may take them. Each
sealed block's raw size is taken from the budget before it is handed off;
once compressed, the block holds only its stored bytes and gives the rest
back, and it gives those back once storage has taken it. When the budget is
full the consuming thread waits (or closes a segment early, see
:mod:`libkb.backup.builder`) instead of reading on.

Charging stored bytes, not raw ones, is what lets a segment of records that
compress well grow past its share of the budget in raw bytes (up to
``segment_max_bytes``): a segment closed early starts a new compression
frame, which costs stored bytes.
"""

from __future__ import annotations

import threading


class ByteBudget:
    """Counts bytes handed off but not yet taken by storage; blocks the consumer when full."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        #: Of ``used``, the raw bytes of blocks not yet encoded (compression threads give most of them back).
        self.unencoded = 0
        self._cond = threading.Condition()

    def try_acquire(self, n: int) -> bool:
        """Take ``n`` bytes if they fit (always when nothing is taken: one block may exceed the limit)."""
        with self._cond:
            if self.used == 0 or self.used + n <= self.limit:
                self.used += n
                return True
            return False

    def count_unencoded(self, n: int) -> None:
        """``n`` more (or fewer) bytes of blocks wait for their encoding."""
        with self._cond:
            self.unencoded += n

    def wait(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for a :meth:`release`."""
        with self._cond:
            self._cond.wait(timeout)

    def release(self, n: int) -> None:
        with self._cond:
            self.used -= n
            self._cond.notify_all()


class SegmentCharge:
    """What one segment holds of the budget: each block's raw size until it is encoded, its stored size after.

    Compression threads shrink it, the upload shrinks it block by block and
    settles the rest when it ends (stored or failed); a shrink after that is
    a no-op, so a block encoded after its segment failed gives nothing back twice.
    """

    __slots__ = ("_budget", "_lock", "_settled", "_unencoded", "held")

    def __init__(self, budget: ByteBudget) -> None:
        self._budget = budget
        self._lock = threading.Lock()
        self._settled = False
        self._unencoded = 0
        #: Bytes of the budget the segment holds now.
        self.held = 0

    @property
    def encoded(self) -> int:
        """Of ``held``, the stored bytes of encoded blocks: what storing the segment now would upload."""
        return self.held - self._unencoded

    def add(self, n: int) -> None:
        """Count a sealed block's raw size ``n``, already taken from the budget, not yet encoded."""
        with self._lock:
            self.held += n
            self._unencoded += n
        self._budget.count_unencoded(n)

    def done(self, raw: int, stored: int) -> None:
        """A block of ``raw`` bytes is encoded into ``stored``: it holds the smaller of the two now."""
        with self._lock:
            if self._settled:
                return
            self._unencoded -= raw
        self._budget.count_unencoded(-raw)
        self.shrink(raw - stored)

    def shrink(self, n: int) -> None:
        """Give back ``n`` of the held bytes (taken by storage)."""
        with self._lock:
            if self._settled or n <= 0:
                return
            n = min(n, self.held)
            self.held -= n
        self._budget.release(n)

    def settle(self) -> None:
        """Give back everything still held: the segment's upload ended."""
        with self._lock:
            n, self.held, self._settled = self.held, 0, True
            unencoded, self._unencoded = self._unencoded, 0
        self._budget.count_unencoded(-unencoded)
        if n:
            self._budget.release(n)
