"""Retries (tenacity) and a circuit breaker around storage calls.

Each operation gets up to ``max_attempts`` tries on transient errors, with
exponential backoff and full jitter. The breaker counts *operations* that
still failed after their retries: after ``breaker_failure_threshold`` of them
in a row it opens and refuses calls at once (``CircuitOpenError``) for
``breaker_reset_secs``, then lets a trial call through. Answers such as "not
found" or "access denied" prove the service is up and do not count.

Beyond that, a run may ride through an outage of minutes: see
:mod:`libkb.storage.outage` (``outage``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

from libkb.storage.errors import BackendError, CircuitOpenError
from libkb.storage.outage import OutageWatch
from libkb.storage.settings import ResilienceConfig

T = TypeVar("T")
log = logging.getLogger("libkb.storage")


def _is_transient(exc: BaseException) -> bool:
    return isinstance(exc, BackendError) and exc.transient and not isinstance(exc, CircuitOpenError)


class CircuitBreaker:
    """Closed, open, half-open; the lock guards the state only, never a request.

    pybreaker (used first) holds its lock for the whole guarded call, so every
    request of a backend ran one at a time: four concurrent 0.5 s calls took
    2 s, and one hung request stalled all others. Its open state also re-enters
    the call itself, so it cannot be used without holding that lock.
    """

    def __init__(self, threshold: int, reset_secs: float) -> None:
        self.threshold = threshold
        self.reset_secs = reset_secs
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: float | None = None
        self._trial = False

    def before(self) -> None:
        """Raise ``_Refused`` while open; after ``reset_secs`` let one trial call through."""
        with self._lock:
            if self._opened_at is None:
                return
            if self._trial or time.monotonic() - self._opened_at < self.reset_secs:
                raise _Refused
            self._trial = True

    def success(self) -> None:
        with self._lock:
            self._failures = 0
            self._opened_at = None
            self._trial = False

    def failure(self) -> None:
        with self._lock:
            self._failures += 1
            if self._trial or self._failures >= self.threshold:
                self._opened_at = time.monotonic()
            self._trial = False

    @property
    def state(self) -> str:
        with self._lock:
            if self._opened_at is None:
                return "closed"
            if self._trial or time.monotonic() - self._opened_at >= self.reset_secs:
                return "half-open"
            return "open"


class _Refused(Exception):
    pass


class Resilience:
    """The retry policy and breaker of one backend instance (thread-safe)."""

    def __init__(
        self, config: ResilienceConfig, backend: str, on_retry: Callable[[], None] | None = None
    ) -> None:
        self.config = config
        self.backend = backend
        self._on_retry = on_retry
        self.breaker = CircuitBreaker(config.breaker_failure_threshold, config.breaker_reset_secs)
        #: The run's outage deadline, once it installs one (:mod:`libkb.storage.outage`).
        self.outage: OutageWatch | None = None

    def _log_retry(self, state: RetryCallState) -> None:
        if self._on_retry is not None:
            self._on_retry()
        exc = state.outcome.exception() if state.outcome else None
        log.warning("%s: attempt %d failed, retrying: %s", self.backend, state.attempt_number, exc)

    def retry(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` with retries only (used for parts of an operation); rides an outage if watched."""
        if self.outage is not None:
            return self.outage.ride(lambda: self._retry(fn))
        return self._retry(fn)

    def _retry(self, fn: Callable[[], T]) -> T:
        retrying = Retrying(
            retry=retry_if_exception(_is_transient),
            stop=stop_after_attempt(max(1, self.config.max_attempts)),
            wait=wait_random_exponential(
                multiplier=self.config.backoff_initial_secs, max=self.config.backoff_max_secs
            ),
            before_sleep=self._log_retry,
            reraise=True,
        )
        return retrying(fn)

    def call(self, fn: Callable[[], T], *, retry: bool = True, key: str | None = None) -> T:
        """Run one operation through the breaker, with retries unless ``retry`` is False.

        With an outage watch, the operation is tried again until its deadline;
        one that cannot be repeated (``retry`` False: a stream read once) only
        waits while the breaker refuses it, before it starts.
        """
        outage = self.outage
        if outage is None:
            return self._call(fn, retry, key)
        if retry:
            return outage.ride(lambda: self._call(fn, True, key))
        outage.ride(lambda: self._admit(key))
        return self._guarded(fn, False)

    def _call(self, fn: Callable[[], T], retry: bool, key: str | None) -> T:
        self._admit(key)
        return self._guarded(fn, retry)

    def _admit(self, key: str | None) -> None:
        try:
            self.breaker.before()
        except _Refused:
            raise CircuitOpenError(
                "the circuit breaker is open after repeated failures; call refused",
                backend=self.backend,
                key=key,
                hint=f"the service keeps failing; calls resume after {self.config.breaker_reset_secs:g}s",
            ) from None

    def _guarded(self, fn: Callable[[], T], retry: bool) -> T:
        """``fn`` (admitted by the breaker), its outcome counted by the breaker."""
        try:
            result = self._retry(fn) if retry else fn()
        except BackendError:
            self.breaker.failure()  # the service is failing
            raise
        except BaseException:
            self.breaker.success()  # an answer (not found, denied) or the caller's own error
            raise
        self.breaker.success()
        return result

    @property
    def state(self) -> str:
        """'closed', 'open' or 'half-open'."""
        return self.breaker.state
