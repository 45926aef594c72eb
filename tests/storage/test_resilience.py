"""Retry and circuit-breaker semantics of the adapter, with a fault-injecting driver.

The same behaviour against a real stopped server is tested in
``integration/storage/test_outage.py``.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from libkb.storage import (
    BackendError,
    CircuitOpenError,
    LibcloudBackend,
    NotFoundError,
    PermissionDeniedError,
    ResilienceConfig,
)
from libkb.storage.drivers.memory import MemoryStorageDriver

FAST = ResilienceConfig(
    max_attempts=3,
    backoff_initial_secs=0.001,
    backoff_max_secs=0.002,
    breaker_failure_threshold=2,
    breaker_reset_secs=0.3,
)


class FlakyDriver(MemoryStorageDriver):
    """Fails the next ``failures`` get_object calls with ``error``."""

    def __init__(self) -> None:
        super().__init__()
        self.failures = 0
        self.error: Exception = requests.exceptions.ConnectionError("connection refused")
        self.calls = 0

    def get_object(self, container_name: str, object_name: str) -> Any:
        self.calls += 1
        if self.failures > 0:
            self.failures -= 1
            raise self.error
        return super().get_object(container_name, object_name)


@pytest.fixture
def flaky() -> tuple[FlakyDriver, LibcloudBackend]:
    driver = FlakyDriver()
    backend = LibcloudBackend(driver, "memory", resilience=FAST)
    backend.put("k", b"v")
    return driver, backend


def test_transient_errors_are_retried(flaky: tuple[FlakyDriver, LibcloudBackend]) -> None:
    driver, backend = flaky
    driver.failures = 2
    assert backend.size("k") == 1
    assert driver.calls == 3


def test_retries_give_up_with_backend_error(flaky: tuple[FlakyDriver, LibcloudBackend]) -> None:
    driver, backend = flaky
    driver.failures = 100
    with pytest.raises(BackendError) as info:
        backend.size("k")
    assert info.value.transient
    assert "cannot reach the service" in str(info.value)
    assert driver.calls == 3


def test_breaker_opens_refuses_and_recovers(flaky: tuple[FlakyDriver, LibcloudBackend]) -> None:
    driver, backend = flaky
    driver.failures = 100
    for _ in range(2):
        with pytest.raises(BackendError):
            backend.size("k")
    calls = driver.calls
    with pytest.raises(CircuitOpenError):
        backend.size("k")
    assert driver.calls == calls  # refused without touching the service
    assert backend.resilience.state == "open"
    driver.failures = 0
    time.sleep(0.35)
    assert backend.size("k") == 1  # the trial call goes through and closes it
    assert backend.resilience.state == "closed"


@pytest.mark.parametrize(
    "error",
    [
        requests.exceptions.HTTPError("x"),
    ],
)
def test_non_transient_errors_are_not_retried(
    flaky: tuple[FlakyDriver, LibcloudBackend], error: Exception
) -> None:
    driver, backend = flaky
    driver.failures = 1
    driver.error = error
    with pytest.raises(BackendError) as info:
        backend.size("k")
    assert not info.value.transient
    assert driver.calls == 1


def test_answers_from_a_live_service_do_not_trip_the_breaker() -> None:
    from libcloud.common.types import InvalidCredsError

    driver = FlakyDriver()
    backend = LibcloudBackend(driver, "memory", resilience=FAST)
    for _ in range(5):
        with pytest.raises(NotFoundError):
            backend.head("missing")
    driver.failures = 5
    driver.error = InvalidCredsError("bad signature")
    for _ in range(5):
        with pytest.raises(PermissionDeniedError):
            backend.head("missing")
    assert backend.resilience.state == "closed"


def test_http_status_mapping() -> None:
    from libcloud.common.exceptions import BaseHTTPError

    from libkb.storage.errormap import map_error

    for status, kind, transient in [
        (403, PermissionDeniedError, False),
        (401, PermissionDeniedError, False),
        (404, NotFoundError, False),
        (429, BackendError, True),
        (500, BackendError, True),
        (503, BackendError, True),
        (400, BackendError, False),
    ]:
        err = map_error(BaseHTTPError(status, "msg"), backend="s3", key="k")
        assert type(err) is kind
        if isinstance(err, BackendError):
            assert err.transient is transient
            assert err.status == status


def test_secrets_are_redacted_from_messages() -> None:
    from libkb.storage.errormap import map_error, redact

    url = "https://a.blob.core.windows.net/c/k?sv=2020&sig=SECRETSIG&se=2030"
    err = map_error(
        requests.exceptions.ConnectionError(f"failed {url} Authorization: SharedKey acct:KEYVALUE="),
        backend="azure",
        key="k",
        secrets=["my-account-key-1234"],
    )
    text = str(err)
    assert "SECRETSIG" not in text and "KEYVALUE" not in text
    assert redact("token my-account-key-1234 here", ["my-account-key-1234"]) == "token *** here"


class BrokenListingDriver(MemoryStorageDriver):
    """Lists in a given order and drops the connection once, after ``break_after`` names."""

    def __init__(self, order: list[str], break_after: int) -> None:
        super().__init__()
        self.order = order
        self.break_after = break_after
        self.listings = 0

    def iterate_container_objects(
        self, container: Any, prefix: str | None = None, ex_prefix: str | None = None
    ) -> Any:
        self.listings += 1
        broken = self.listings == 1
        for i, name in enumerate(self.order):
            if broken and i == self.break_after:
                raise requests.exceptions.ConnectionError("connection reset while listing")
            yield self.get_object(container.name, name)


@pytest.mark.parametrize(
    "order",
    [
        ["a-1", "a/b", "a/c", "b", "c/d", "e"],  # UTF-8 order, as S3, Azure and GCS list
        ["a/b", "a/c", "a-1", "c/d", "b", "e"],  # directory by directory, as SeaweedFS lists
    ],
)
def test_listing_resumes_after_a_dropped_connection(order: list[str]) -> None:
    driver = BrokenListingDriver(order, break_after=3)
    backend = LibcloudBackend(driver, "memory", resilience=FAST)
    for name in order:
        backend.put(name, b"")
    assert list(backend.iter_keys()) == order  # every key once, in the service's order
    assert driver.listings == 2
    assert backend.list() == sorted(order, key=str.encode)


def test_concurrent_calls_are_not_serialised() -> None:
    """Every thread must be inside the driver at once: a breaker holding a lock
    around the call (as pybreaker does) would break the barrier."""
    threads = 4
    barrier = threading.Barrier(threads, timeout=10)

    class MeetingDriver(MemoryStorageDriver):
        def get_object(self, container_name: str, object_name: str) -> Any:
            barrier.wait()
            return super().get_object(container_name, object_name)

    backend = LibcloudBackend(MeetingDriver(), "memory", resilience=FAST)
    backend.put("k", b"v")
    with ThreadPoolExecutor(threads) as pool:
        sizes = list(pool.map(lambda _: backend.size("k"), range(threads)))
    assert sizes == [1] * threads
