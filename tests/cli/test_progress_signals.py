"""Progress output (bar on a terminal, log lines elsewhere), the summary line, and signal handling."""

from __future__ import annotations

import fcntl
import io
import logging
import os
import select
import signal
import struct
import subprocess
import sys
import termios
import textwrap
import time

import pytest

from libkb.backup.engine import BackupProgress, BackupResult
from libkb.cli.progress import BarProgress, LogProgress, make_progress, summary_line
from libkb.cli.signals import StopOnSignal

PROGRESS = BackupProgress(
    records=12_345,
    bytes=50 << 20,
    partitions_done=3,
    partitions_total=8,
    segments=4,
    elapsed_secs=10,
    stored_records=10_000,
    stored_bytes=20 << 20,
)
STATS = "read 12,345 records, 50.0 MiB (5.0 MiB/s); stored 10,000 records, 20.0 MiB in 4 segments"


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_a_bar_and_a_pipe_gets_log_lines() -> None:
    assert isinstance(make_progress("b1", Tty()), BarProgress)
    assert isinstance(make_progress("b1", io.StringIO()), LogProgress)


def test_bar_shows_read_and_stored_in_one_unit_system() -> None:
    stream = Tty()
    bar = BarProgress("b1", stream)
    bar.update(PROGRESS)
    bar.close()
    text = stream.getvalue()
    assert "3/8 partitions |" in text and f"| {STATS} [" in text
    assert "MB" not in text.replace("MiB", "") and "|," not in text and "| ," not in text


def test_log_lines_are_rate_limited(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "libkb.cli")
    progress = LogProgress("b1", interval_secs=60)
    progress.update(PROGRESS)
    progress.update(PROGRESS)
    (line,) = [r.getMessage() for r in caplog.records]
    assert line == f"backup b1: {STATS}, 3/8 partitions done, 10s"


def test_the_last_log_line_is_the_final_state(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "libkb.cli")
    progress = LogProgress("b1", interval_secs=60)
    progress.update(PROGRESS)
    final = BackupProgress(12_345, 50 << 20, 8, 8, 5, 12, stored_records=12_345, stored_bytes=25 << 20)
    progress.update(final)  # within the interval: not logged yet
    progress.close()
    assert "stored 12,345 records, 25.0 MiB in 5 segments, 8/8 partitions" in caplog.records[-1].getMessage()


def test_log_lines_show_the_recent_rate(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "libkb.cli")
    progress = LogProgress("b1", interval_secs=0)
    progress.update(PROGRESS)
    later = BackupProgress(12_345, 50 << 20, 3, 8, 4, elapsed_secs=20)  # idle for 10 s
    progress.update(later)
    assert "(0.0 MiB/s)" in caplog.records[-1].getMessage()


def test_summary_line() -> None:
    result = BackupResult(
        "b1",
        "r1",
        "complete",
        records=1000,
        bytes=4 << 20,
        stored_records=1000,
        stored_bytes=2048,
        segments=2,
    )
    result.duration_secs = 2.0
    result.missing_ranges = ["t[0] offsets 0-9 were deleted"]
    line = summary_line(result)
    assert line.startswith(
        "backup b1 complete: read 1,000 records, 4.0 MiB; stored 1,000 records, 2.0 KiB in 2 segments"
    )
    assert "(2.0 MiB/s)" in line and "1 range(s) lost to retention" in line


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


def _drain(fd: int) -> str:
    """Everything written so far: one read of a pty may return only the first chunk."""
    chunks = []
    while select.select([fd], [], [], 0.5)[0]:
        chunks.append(os.read(fd, 65536))
    return b"".join(chunks).decode()


def test_a_pty_gets_the_bar_without_stray_punctuation() -> None:
    main, side = os.openpty()
    fcntl.ioctl(side, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 200, 0, 0))
    try:
        with os.fdopen(side, "w", closefd=False) as stream:
            display = make_progress("b1", stream)
            display.update(PROGRESS)
            display.close()
        text = _drain(main)
    finally:
        os.close(main)
        os.close(side)
    assert isinstance(display, BarProgress)
    assert "b1: 3/8 partitions |" in text and f"| {STATS} [00:" in text
    assert "MB/s" not in text and ", ," not in text and "| ," not in text
