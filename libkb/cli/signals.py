"""SIGINT/SIGTERM during a backup: the first finishes cleanly, the second exits at once.

Kubernetes sends SIGTERM and waits ``terminationGracePeriodSeconds``: the
first signal lets the engine store its open segments and record the run; an
impatient operator can press Ctrl-C again to leave immediately (storage stays
consistent, the next run resumes).
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import Any

from libkb.cli.exits import EXIT_FORCED

log = logging.getLogger("libkb.cli")


class StopOnSignal:
    """Context manager installing the handlers in the main thread, restoring the old ones after."""

    def __init__(
        self, stop: Callable[[], None], signals: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM)
    ) -> None:
        self.stop = stop
        self.signals = signals
        self.received: list[int] = []
        self._old: dict[int, Any] = {}

    def __enter__(self) -> StopOnSignal:
        for sig in self.signals:
            self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for sig, handler in self._old.items():
            signal.signal(sig, handler)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.received.append(signum)
        name = signal.Signals(signum).name
        if len(self.received) == 1:
            log.warning(
                "%s received: storing open segments, then exiting (send it again to exit at once)", name
            )
            self.stop()
            return
        os.write(2, f"kafka-backup: second {name}: exiting now without finishing\n".encode())
        os._exit(EXIT_FORCED)
