"""Show a running backup's progress: a tqdm bar on a terminal, a log line every ~10 s otherwise.

Containers and CronJobs capture stderr into log systems, where a redrawn bar
becomes thousands of lines; there a periodic line is what people read.
"""

from __future__ import annotations

import logging
import time
from typing import IO, Any, Protocol

from libkb.backup.engine import BackupResult
from libkb.cli.units import human_bytes

log = logging.getLogger("libkb.cli")
MIB = 1 << 20


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
    """MiB/s: the same binary units as every size libkb prints."""
    return nbytes / MIB / secs if secs > 0 else 0.0


def progress_text(p: Any, kind: str, mib_per_sec: float) -> str:
    """Records and bytes read and stored (backup) or produced (restore), one unit system throughout."""
    segments = _plural(getattr(p, "segments", 0), "segment")
    if kind == "backup":
        return (
            f"read {p.records:,} records, {human_bytes(p.bytes)} ({mib_per_sec:.1f} MiB/s); "
            f"stored {getattr(p, 'stored_records', 0):,} records, "
            f"{human_bytes(getattr(p, 'stored_bytes', 0))} in {segments}"
        )
    return (
        f"produced {p.records:,} records, {human_bytes(p.bytes)} ({mib_per_sec:.1f} MiB/s) "
        f"from {segments} read"
    )


class LogProgress:
    """One INFO line per ``interval_secs`` (the first as soon as there is progress), and the last one.

    The rate is over the last interval, not since the start: in continuous
    mode an average since start says little about now. The final state is
    logged on :meth:`close`, so the last line agrees with the summary.
    """

    def __init__(self, backup_id: str, interval_secs: float = 10.0, kind: str = "backup") -> None:
        self.backup_id = backup_id
        self.interval_secs = interval_secs
        self.kind = kind
        self._next = 0.0
        self._last: Progress | None = None
        self._pending: Progress | None = None

    def update(self, p: Progress) -> None:
        now = time.monotonic()
        if now < self._next:
            self._pending = p
            return
        self._next = now + self.interval_secs
        self._log(p)

    def _log(self, p: Progress) -> None:
        last = self._last
        self._last, self._pending = p, None
        if last is None:
            current = rate(p.bytes, p.elapsed_secs)
        else:
            current = rate(p.bytes - last.bytes, p.elapsed_secs - last.elapsed_secs)
        log.info(
            "%s %s: %s, %d/%d partitions done, %.0fs",
            self.kind,
            self.backup_id,
            progress_text(p, self.kind, current),
            p.partitions_done,
            p.partitions_total,
            p.elapsed_secs,
            # Fields of a JSON log line, for a log pipeline to chart or alert on without parsing text.
            extra={
                "event": "progress",
                "mode": self.kind,
                "records": p.records,
                "bytes": p.bytes,
                "partitions_done": p.partitions_done,
                "partitions_total": p.partitions_total,
                "elapsed_secs": round(p.elapsed_secs, 3),
            },
        )

    def close(self) -> None:
        if self._pending is not None:
            self._log(self._pending)


class BarProgress:
    """A tqdm bar over partitions done, with what was read and stored alongside."""

    def __init__(self, backup_id: str, stream: IO[str], kind: str = "backup") -> None:
        self.backup_id = backup_id
        self.stream = stream
        self.kind = kind
        self._bar: Any = None  # tqdm ships no type hints

    def update(self, p: Progress) -> None:
        if self._bar is None:
            self._bar = _bar_class()(
                total=p.partitions_total,
                desc=self.backup_id,
                unit="part",
                file=self.stream,
                dynamic_ncols=True,
                leave=True,
                bar_format="{desc}: {n_fmt}/{total_fmt} partitions |{bar}| {stats} [{elapsed}]",
            )
        self._bar.n = p.partitions_done
        self._bar.stats = progress_text(p, self.kind, rate(p.bytes, p.elapsed_secs))
        self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _bar_class() -> Any:
    """tqdm with a ``{stats}`` field: its ``{postfix}`` always starts with a comma."""
    from tqdm import tqdm  # type: ignore[import-untyped,unused-ignore]  # no stubs installed

    class StatsBar(tqdm):  # type: ignore[misc,unused-ignore]
        stats = ""

        @property
        def format_dict(self) -> dict[str, Any]:
            d: dict[str, Any] = super().format_dict
            d["stats"] = self.stats
            return d

    return StatsBar


def make_progress(
    backup_id: str, stream: IO[str], interval_secs: float = 10.0, kind: str = "backup"
) -> ProgressDisplay:
    isatty = getattr(stream, "isatty", None)
    if isatty is not None and isatty():
        return BarProgress(backup_id, stream, kind)
    return LogProgress(backup_id, interval_secs, kind)


def summary_line(result: BackupResult) -> str:
    """The one line a backup prints at its end."""
    line = (
        f"backup {result.backup_id} {result.status}: read {result.records:,} records, "
        f"{human_bytes(result.bytes)}; stored {result.stored_records:,} records, "
        f"{human_bytes(result.stored_bytes)} in {_plural(result.segments, 'segment')}; "
        f"{_plural(len(result.topics), 'topic')} / {_plural(result.partitions, 'partition')}, "
        f"{result.duration_secs:.1f}s ({rate(result.bytes, result.duration_secs):.1f} MiB/s)"
    )
    if result.missing_ranges:
        line += f"; {len(result.missing_ranges)} range(s) lost to retention before backup"
    return line


def _plural(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")
