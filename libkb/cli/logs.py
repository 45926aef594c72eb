"""Logging for the command line: libkb's own messages at INFO by default, to stderr.

``-v`` shows libkb's debug messages, ``-vv`` everyone's (librdkafka,
Libcloud) plus tracebacks of errors; ``--log-level`` sets libkb's level
exactly. Third-party loggers stay at WARNING unless ``-vv``: their INFO lines
are noise to an operator.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable
from typing import IO

LEVELS = ("debug", "info", "warning", "error", "critical")
_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def configure(verbosity: int, level: str | None = None, stream: IO[str] | None = None) -> None:
    """Send log records to ``stream`` (stderr), replacing a handler an earlier call installed."""
    if level is not None:
        ours = getattr(logging, level.upper())
    else:
        ours = logging.DEBUG if verbosity >= 1 else logging.INFO
    handler = ConsoleHandler(stream or sys.stderr)
    handler.setFormatter(logging.Formatter(_FORMAT, "%Y-%m-%dT%H:%M:%S"))
    root = logging.getLogger()
    unconfigure()  # main() may run more than once in one process (tests)
    handler.libkb_cli = True  # type: ignore[attr-defined]
    handler.addFilter(RepeatFilter(("libkb.kafka",)))
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbosity >= 2 else logging.WARNING)
    logging.getLogger("libkb").setLevel(ours)


def unconfigure() -> None:
    """Remove the handler :func:`configure` installed."""
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "libkb_cli", False):
            root.removeHandler(old)


class ConsoleHandler(logging.StreamHandler):  # type: ignore[type-arg]  # generic only in typeshed
    """On a terminal, write through ``tqdm.write`` so log lines do not tear the progress bar."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            isatty = getattr(self.stream, "isatty", None)
            if isatty is None or not isatty():
                super().emit(record)
                return
            from tqdm import tqdm  # type: ignore[import-untyped,unused-ignore]

            tqdm.write(self.format(record), file=self.stream)
        except Exception:
            self.handleError(record)


class RepeatFilter(logging.Filter):
    """Let an identical message of the named loggers through once per ``window_secs``.

    While a broker is down librdkafka logs the same connection failure
    several times a second from every client; an operator needs it once, and
    then how often it repeated.
    """

    def __init__(
        self, loggers: tuple[str, ...], window_secs: float = 30.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__()
        self.loggers = loggers
        self.window_secs = window_secs
        self._clock = clock
        self._seen: dict[tuple[str, int, str], list[float]] = {}  # key -> [last shown, suppressed]
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(self.loggers):
            return True
        key = (record.name, record.levelno, record.getMessage())
        now = self._clock()
        with self._lock:
            seen = self._seen.get(key)
            if seen is not None and now - seen[0] < self.window_secs:
                seen[1] += 1
                return False
            suppressed = int(seen[1]) if seen else 0
            self._seen[key] = [now, 0]
            if len(self._seen) > 1000:
                self._seen = {k: v for k, v in self._seen.items() if now - v[0] < self.window_secs}
        if suppressed:
            record.msg = f"{record.getMessage()} (repeated {suppressed} times)"
            record.args = None
        return True


PROG = "kafka-backup"


def error_line(message: str, stream: IO[str] | None = None) -> None:
    """The one line an operator reads when a command fails (always shown, whatever the log level)."""
    print(f"{PROG}: error: {message}", file=stream or sys.stderr, flush=True)
