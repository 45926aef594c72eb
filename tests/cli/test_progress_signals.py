"""Progress output (bar on a terminal, log lines elsewhere), the summary line, and signal handling."""

from __future__ import annotations

import io
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from libkb.backup.engine import BackupProgress, BackupResult
from libkb.cli.progress import BarProgress, LogProgress, make_progress, summary_line
from libkb.cli.signals import StopOnSignal

PROGRESS = BackupProgress(
    records=12_345, bytes=50_000_000, partitions_done=3, partitions_total=8, segments=4, elapsed_secs=10
)


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_a_bar_and_a_pipe_gets_log_lines() -> None:
    assert isinstance(make_progress("b1", Tty()), BarProgress)
    assert isinstance(make_progress("b1", io.StringIO()), LogProgress)


def test_bar_shows_partitions_records_and_rate() -> None:
    stream = Tty()
    bar = BarProgress("b1", stream)
    bar.update(PROGRESS)
    bar.close()
    text = stream.getvalue()
    assert "3/8 partitions" in text and "12,345 records" in text and "50.0 MB" in text and "5.0 MB/s" in text


def test_log_lines_are_rate_limited(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "libkb.cli")
    progress = LogProgress("b1", interval_secs=60)
    progress.update(PROGRESS)
    progress.update(PROGRESS)
    (line,) = [r.getMessage() for r in caplog.records]
    assert (
        line == "backup b1: 12,345 records, 47.7 MiB (5.0 MB/s), 3/8 partitions done, 4 segments stored, 10s"
    )


def test_log_lines_show_the_recent_rate(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "libkb.cli")
    progress = LogProgress("b1", interval_secs=0)
    progress.update(PROGRESS)
    later = BackupProgress(12_345, 50_000_000, 3, 8, 4, elapsed_secs=20)  # idle for 10 s
    progress.update(later)
    assert "(0.0 MB/s)" in caplog.records[-1].getMessage()


def test_summary_line() -> None:
    result = BackupResult(
        "b1", "r1", "complete", records=1000, bytes=4_000_000, stored_bytes=2048, segments=2
    )
    result.duration_secs = 2.0
    result.missing_ranges = ["t[0] offsets 0-9 were deleted"]
    line = summary_line(result)
    assert line.startswith("backup b1 complete: 1,000 records, 3.8 MiB read, 2.0 KiB stored in 2 segments")
    assert "(2.0 MB/s)" in line and "1 range(s) lost to retention" in line


def test_first_signal_stops_cleanly_and_handlers_are_restored() -> None:
    calls = []
    before = signal.getsignal(signal.SIGTERM)
    with StopOnSignal(lambda: calls.append("stop")) as guard:
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(100):  # Python runs the handler between bytecodes of this thread
            if calls:
                break
            time.sleep(0.01)
    assert calls == ["stop"] and guard.received == [signal.SIGTERM]
    assert signal.getsignal(signal.SIGTERM) is before


def test_second_signal_exits_at_once() -> None:
    script = textwrap.dedent(
        """
        import os, signal, time
        from libkb.cli.signals import StopOnSignal
        with StopOnSignal(lambda: print("stopping", flush=True)):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.1)
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(10)
        print("not reached")
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stdout == "stopping\n"
    assert "second SIGTERM: exiting now" in done.stderr


def test_repeated_log_lines_are_shown_once_per_window() -> None:
    from libkb.cli.logs import RepeatFilter

    now = [0.0]
    repeat = RepeatFilter(("libkb.kafka",), window_secs=30, clock=lambda: now[0])

    def record(msg: str) -> logging.LogRecord:
        return logging.LogRecord("libkb.kafka", logging.ERROR, __file__, 1, msg, None, None)

    shown = [r for r in (record("connect failed") for _ in range(5)) if repeat.filter(r)]
    assert len(shown) == 1 and repeat.filter(record("another"))
    progress = logging.LogRecord("libkb.cli", logging.INFO, __file__, 1, "same", None, None)
    assert repeat.filter(progress) and repeat.filter(progress)  # other loggers pass untouched
    now[0] = 31
    again = record("connect failed")
    assert repeat.filter(again) and again.getMessage() == "connect failed (repeated 4 times)"
