"""Show a running backup's progress: a tqdm bar on a terminal, a log line every ~10 s otherwise.

Containers and CronJobs capture stderr into log systems, where a redrawn bar
becomes thousands of lines; there a periodic line is what people read.
"""

from __future__ import annotations

import logging
import time
from typing import IO, Any, Protocol

from libkb.backup.engine import BackupResult
from libkb.cli.render import human_bytes

log = logging.getLogger("libkb.cli")
MB = 1_000_000


class Progress(Protocol):
    """What backup and restore progress reports have in common."""

    @property
    def records(self) -> int: ...
    @property
    def bytes(self) -> int: ...
    @property
    def partitions_done(self) -> int: ...
    @property
    def partitions_total(self) -> int: ...
    @property
    def elapsed_secs(self) -> float: ...


class ProgressDisplay(Protocol):
    def update(self, progress: Any) -> None: ...

    def close(self) -> None: ...


def rate(nbytes: int, secs: float) -> float:
    """MB/s (decimal megabytes, as network and disk tools report)."""
    return nbytes / MB / secs if secs > 0 else 0.0


class LogProgress:
    """One INFO line per ``interval_secs`` (the first as soon as there is progress).

    The rate is over the last interval, not since the start: in continuous
    mode an average since start says little about now.
    """

    def __init__(self, backup_id: str, interval_secs: float = 10.0, kind: str = "backup") -> None:
        self.backup_id = backup_id
        self.interval_secs = interval_secs
        self.kind = kind
        self._next = 0.0
        self._last: Progress | None = None

    def update(self, p: Progress) -> None:
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + self.interval_secs
        last = self._last
        self._last = p
        if last is None:
            current = rate(p.bytes, p.elapsed_secs)
        else:
            current = rate(p.bytes - last.bytes, p.elapsed_secs - last.elapsed_secs)
        log.info(
            "%s %s: %s records, %s (%.1f MB/s), %d/%d partitions done, %d segments %s, %.0fs",
            self.kind,
            self.backup_id,
            f"{p.records:,}",
            human_bytes(p.bytes),
            current,
            p.partitions_done,
            p.partitions_total,
            getattr(p, "segments", 0),
            "stored" if self.kind == "backup" else "read",
            p.elapsed_secs,
        )

    def close(self) -> None:
        pass


class BarProgress:
    """A tqdm bar over partitions done, with records, MB and MB/s alongside."""

    def __init__(self, backup_id: str, stream: IO[str]) -> None:
        self.backup_id = backup_id
        self.stream = stream
        self._bar: Any = None  # tqdm ships no type hints

    def update(self, p: Progress) -> None:
        from tqdm import tqdm  # type: ignore[import-untyped,unused-ignore]  # no stubs installed

        if self._bar is None:
            self._bar = tqdm(
                total=p.partitions_total,
                desc=self.backup_id,
                unit="part",
                file=self.stream,
                dynamic_ncols=True,
                leave=True,
                bar_format="{desc}: {n_fmt}/{total_fmt} partitions |{bar}| {postfix} [{elapsed}]",
            )
        self._bar.n = p.partitions_done
        self._bar.set_postfix_str(
            f"{p.records:,} records, {p.bytes / MB:.1f} MB, {rate(p.bytes, p.elapsed_secs):.1f} MB/s, "
            f"{getattr(p, 'segments', 0)} segments"
        )

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def make_progress(
    backup_id: str, stream: IO[str], interval_secs: float = 10.0, kind: str = "backup"
) -> ProgressDisplay:
    isatty = getattr(stream, "isatty", None)
    if isatty is not None and isatty():
        return BarProgress(backup_id, stream)
    return LogProgress(backup_id, interval_secs, kind)


def summary_line(result: BackupResult) -> str:
    """The one line a backup prints at its end."""
    line = (
        f"backup {result.backup_id} {result.status}: {result.records:,} records, "
        f"{human_bytes(result.bytes)} read, {human_bytes(result.stored_bytes)} stored in "
        f"{_plural(result.segments, 'segment')}, {_plural(len(result.topics), 'topic')} / "
        f"{_plural(result.partitions, 'partition')}, "
        f"{result.duration_secs:.1f}s ({rate(result.bytes, result.duration_secs):.1f} MB/s)"
    )
    if result.missing_ranges:
        line += f"; {len(result.missing_ranges)} range(s) lost to retention before backup"
    return line


def _plural(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")
