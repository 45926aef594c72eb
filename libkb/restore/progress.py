"""A restore's running totals, for the progress callback and the result.

Partition threads add to them as they go; the run controller takes a
consistent snapshot under the lock for each progress report.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RestoreProgress:
    records: int
    bytes: int
    partitions_done: int
    partitions_total: int
    elapsed_secs: float
    segments: int = 0  # segments read


class RunCounters:
    """Records and bytes produced, segments read, partitions done and records skipped so far."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.records = 0
        self.bytes = 0
        self.segments = 0
        self.partitions_done = 0
        self.skipped = 0  # records an earlier run had written (resume)

    def add(self, records: int, nbytes: int) -> None:
        with self._lock:
            self.records += records
            self.bytes += nbytes

    def segment_read(self) -> None:
        with self._lock:
            self.segments += 1

    def partition_done(self, skipped: int) -> None:
        with self._lock:
            self.partitions_done += 1
            self.skipped += skipped

    def progress(self, partitions_total: int, started: float) -> RestoreProgress:
        """A snapshot; ``started`` is the run's ``time.monotonic()`` start."""
        with self._lock:
            records, nbytes, done, segments = self.records, self.bytes, self.partitions_done, self.segments
        return RestoreProgress(records, nbytes, done, partitions_total, time.monotonic() - started, segments)
