"""The byte budget that keeps a backup's memory flat however big the topic.

Why this module exists: the consuming thread hands sealed blocks to
compression and upload threads much faster than storage may take them. Each
sealed block's raw size is taken from the budget before it is handed off and
given back once storage has taken the block; when the budget is full the
consuming thread waits (or closes a segment early, see
:mod:`libkb.backup.builder`) instead of reading on.
"""

from __future__ import annotations

import threading


class ByteBudget:
    """Counts bytes handed off but not yet taken by storage; blocks the consumer when full."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self._cond = threading.Condition()

    def try_acquire(self, n: int) -> bool:
        """Take ``n`` bytes if they fit (always when nothing is taken: one block may exceed the limit)."""
        with self._cond:
            if self.used == 0 or self.used + n <= self.limit:
                self.used += n
                return True
            return False

    def wait(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for a :meth:`release`."""
        with self._cond:
            self._cond.wait(timeout)

    def release(self, n: int) -> None:
        with self._cond:
            self.used -= n
            self._cond.notify_all()
