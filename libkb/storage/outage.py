"""Riding through a storage outage: keep retrying until a deadline, shared by a run's threads.

A backend's own retries (:mod:`libkb.storage.resilience`) last seconds: they
absorb a dropped connection, not a bucket unreachable for minutes. A run
that would rather wait than fail (a continuous backup in Kubernetes, a long
restore) installs an :class:`OutageWatch` on its backend
(:meth:`~libkb.storage.base.StorageBackend.ride_outages`). Every operation
that still fails with a transient error, or is refused by the open circuit
breaker, is then tried again with capped exponential backoff and full
jitter until the outage, counted from its first failure in any thread, has
lasted the deadline; then :class:`~libkb.storage.errors.StorageOutageError`.

The watch also tells the run how the outage goes: whether storage is down,
its last error, and the time spent waiting (``subscribe``: the run's metric
and liveness watchdog). A ``guard`` (the run's lease check) runs before an
operation is tried again, so that a write never lands after another run
took the backup over during the outage.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception, wait_random_exponential

from libkb.storage.errors import BackendError, CircuitOpenError, StorageOutageError

T = TypeVar("T")
log = logging.getLogger("libkb.storage")

#: Backoff between tries of one operation: exponential from 1 s, capped at 10 s, full jitter.
BACKOFF_INITIAL_SECS = 1.0
BACKOFF_MAX_SECS = 10.0


def is_down(exc: BaseException) -> bool:
    """Whether ``exc`` says storage is unreachable for now (the breaker's refusals included)."""
    if isinstance(exc, CircuitOpenError):
        return True
    return isinstance(exc, BackendError) and exc.transient and not isinstance(exc, StorageOutageError)


class OutageWatch:
    """The outage deadline of one run, and what its threads see of an outage (thread-safe)."""

    def __init__(
        self,
        deadline_secs: float,
        *,
        setting: str,
        backoff_initial_secs: float = BACKOFF_INITIAL_SECS,
        backoff_max_secs: float = BACKOFF_MAX_SECS,
    ) -> None:
        """``setting`` names the job key of the deadline, for the final error."""
        self.deadline_secs = deadline_secs
        self.setting = setting
        self.guard: Callable[[], None] | None = None
        self._wait = wait_random_exponential(multiplier=backoff_initial_secs, max=backoff_max_secs)
        self._lock = threading.Lock()
        self._listeners: list[Callable[[float], None]] = []
        self._abandoned = threading.Event()
        self._local = threading.local()
        self._down_since: float | None = None  # monotonic, the outage's first failure
        self._error: str | None = None
        self._sleeping = 0  # threads waiting between tries
        self._mark = 0.0  # when waiting time was last counted
        self._waited = 0.0
        self.outages = 0  # outages ridden through so far

    # -- what the run sees -------------------------------------------------------------

    def subscribe(self, listener: Callable[[float], None]) -> None:
        """Call ``listener(seconds)`` with each stretch of time spent waiting on storage."""
        self._listeners.append(listener)

    @property
    def down(self) -> bool:
        """Whether storage is failing now (from its first failure to the next success)."""
        return self._down_since is not None

    @property
    def last_error(self) -> str | None:
        """The error of the outage under way, or of the last one."""
        return self._error

    @property
    def waited_secs(self) -> float:
        """Wall-clock seconds during which at least one operation waited for storage."""
        self._count(time.monotonic())
        return self._waited

    def abandon(self) -> None:
        """Stop waiting: the run ends for another reason; waiting operations raise their error now."""
        self._abandoned.set()

    # -- riding --------------------------------------------------------------------------

    def ride(self, fn: Callable[[], T]) -> T:
        """``fn()``, tried again while storage is down until the deadline; guarded before each retry."""
        if self.deadline_secs <= 0 or getattr(self._local, "guarding", False):
            return fn()
        failed = False

        def attempt() -> T:
            nonlocal failed
            if failed and self.guard is not None:
                self._guarded()
            failed = True
            result = fn()
            self._up()
            return result

        retrying = Retrying(
            retry=retry_if_exception(is_down),
            stop=self._over,
            wait=self._wait,
            sleep=self._sleep,
            after=self._failed,
            reraise=True,
        )
        try:
            return retrying(attempt)
        except BackendError as exc:
            if not is_down(exc) or self._abandoned.is_set():
                raise
            raise StorageOutageError(
                f"storage stayed unreachable for {self.deadline_secs:g}s: {exc}",
                hint=f"raise {self.setting} to wait longer; a re-run continues where this one stopped",
            ) from exc

    def _guarded(self) -> None:
        assert self.guard is not None
        self._local.guarding = True
        try:
            self.guard()
        finally:
            self._local.guarding = False

    def _failed(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome is not None else None
        if exc is None or not is_down(exc):
            return
        with self._lock:
            if self._down_since is None:
                self._down_since = time.monotonic()
                self._error = None
                log.warning(
                    "storage is unreachable; waiting up to %gs (%s): %s",
                    self.deadline_secs,
                    self.setting,
                    exc,
                )
            if not isinstance(exc, CircuitOpenError) or self._error is None:
                self._error = str(exc)  # the breaker's refusals do not hide the cause

    def _over(self, state: RetryCallState) -> bool:
        # From the outage's start, or this operation's if it alone keeps failing.
        since = self._down_since
        started = state.start_time if since is None else min(since, state.start_time)
        return self._abandoned.is_set() or time.monotonic() - started >= self.deadline_secs

    def _sleep(self, seconds: float) -> None:
        now = time.monotonic()
        since = self._down_since
        if since is not None:  # never past the deadline
            seconds = max(0.0, min(seconds, since + self.deadline_secs - now))
        with self._lock:
            self._count_locked(now)
            self._sleeping += 1
        try:
            self._abandoned.wait(seconds)
        finally:
            now = time.monotonic()
            with self._lock:
                delta = self._count_locked(now)
                self._sleeping -= 1
            self._tell(delta)

    def _up(self) -> None:
        if self._down_since is None:
            return
        with self._lock:
            since, self._down_since = self._down_since, None
            if since is None:
                return
            self.outages += 1
        log.warning("storage answers again after %.0fs", time.monotonic() - since)

    def _count(self, now: float) -> None:
        with self._lock:
            delta = self._count_locked(now)
        self._tell(delta)

    def _count_locked(self, now: float) -> float:
        delta = now - self._mark if self._sleeping else 0.0
        self._waited += delta
        self._mark = now
        return delta

    def _tell(self, delta: float) -> None:
        for listener in self._listeners:
            listener(delta)
