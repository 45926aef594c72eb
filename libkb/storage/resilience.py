"""Retries (tenacity) and a circuit breaker (pybreaker) around storage calls.

Each operation gets up to ``max_attempts`` tries on transient errors, with
exponential backoff and full jitter. The breaker counts *operations* that
still failed after their retries: after ``breaker_failure_threshold`` of them
in a row it opens and refuses calls at once (``CircuitOpenError``) for
``breaker_reset_secs``, then lets a trial call through. Answers such as "not
found" or "access denied" prove the service is up and do not count.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

import pybreaker
from prometheus_client import Counter
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

from libkb.storage.errors import BackendError, CircuitOpenError
from libkb.storage.settings import ResilienceConfig

T = TypeVar("T")
log = logging.getLogger("libkb.storage")

STORAGE_RETRIES = Counter(
    "kafka_backup_storage_retries_total",
    "Storage requests retried after a transient error",
    ["backend"],
)


def _is_transient(exc: BaseException) -> bool:
    return isinstance(exc, BackendError) and exc.transient and not isinstance(exc, CircuitOpenError)


class Resilience:
    """The retry policy and breaker of one backend instance (thread-safe)."""

    def __init__(self, config: ResilienceConfig, backend: str) -> None:
        self.config = config
        self.backend = backend
        self.breaker = pybreaker.CircuitBreaker(
            fail_max=config.breaker_failure_threshold,
            reset_timeout=config.breaker_reset_secs,
            exclude=[lambda exc: not isinstance(exc, BackendError)],
            throw_new_error_on_trip=False,
            name=backend,
        )

    def _log_retry(self, state: RetryCallState) -> None:
        STORAGE_RETRIES.labels(self.backend).inc()
        exc = state.outcome.exception() if state.outcome else None
        log.warning("%s: attempt %d failed, retrying: %s", self.backend, state.attempt_number, exc)

    def retry(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` with retries only (used for parts of an operation)."""
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
        """Run one operation through the breaker, with retries unless ``retry`` is False."""
        body: Callable[[], T] = (lambda: self.retry(fn)) if retry else fn
        try:
            return self.breaker.call(body)
        except pybreaker.CircuitBreakerError:
            raise CircuitOpenError(
                "the circuit breaker is open after repeated failures; call refused",
                backend=self.backend,
                key=key,
                hint=f"the service keeps failing; calls resume after "
                f"{self.config.breaker_reset_secs:g}s",
            ) from None

    @property
    def state(self) -> str:
        """'closed', 'open' or 'half-open'."""
        return str(self.breaker.current_state)
