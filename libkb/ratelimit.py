"""One rate limiter for backup reads and restore writes: a token bucket with a capped burst.

Each limited quantity (bytes, records) is a virtual clock, ``paid_until``: the
moment by which everything consumed so far is allowed. Consuming ``n`` moves
it by ``n / rate``; the caller waits until the clock is no longer ahead of
now. Idle time earns at most ``burst_secs`` of credit, so a job that sat idle
(an hour of a quiet continuous backup, or a restore's slow phase) does not
then run at full speed for as long as it idled: the average over any window
stays under the rate plus one burst. A set ``stop`` event ends a wait at once.
"""

from __future__ import annotations

import threading
import time


class RateLimiter:
    """Keeps bytes/s and records/s under their rates (``None``: unlimited); thread-safe."""

    def __init__(
        self,
        *,
        bytes_per_sec: int | None = None,
        records_per_sec: int | None = None,
        stop: threading.Event | None = None,
        burst_secs: float = 1.0,
    ) -> None:
        self._rates = (bytes_per_sec or 0, records_per_sec or 0)
        self.active = any(self._rates)
        self.stop = stop if stop is not None else threading.Event()
        self.burst_secs = burst_secs
        now = time.monotonic()
        self._paid_until = [now, now]
        self._lock = threading.Lock()

    def consume(self, nbytes: int = 0, records: int = 0) -> None:
        """Account for ``nbytes`` and ``records`` just moved; wait while ahead of the rate."""
        if not self.active:
            return
        with self._lock:
            now = time.monotonic()
            ahead = 0.0
            for i, amount in enumerate((nbytes, records)):
                rate = self._rates[i]
                if rate:
                    paid = max(self._paid_until[i], now - self.burst_secs) + amount / rate
                    self._paid_until[i] = paid
                    ahead = max(ahead, paid - now)
        if ahead > 0:
            self.stop.wait(ahead)
