"""Riding through a storage outage (:mod:`libkb.storage.outage`) over a driver that fails on purpose.

A real stopped MinIO under a running backup and restore is tested in
``integration/test_outages.py``.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests

from libkb.storage import (
    LibcloudBackend,
    NotFoundError,
    OutageWatch,
    ResilienceConfig,
    StorageOutageError,
)
from libkb.storage.drivers.memory import MemoryStorageDriver

FAST = ResilienceConfig(
    max_attempts=2,
    backoff_initial_secs=0.001,
    backoff_max_secs=0.002,
    breaker_failure_threshold=2,
    breaker_reset_secs=0.05,
)


class DownDriver(MemoryStorageDriver):
    """Refuses connections while ``down``; after ``up_after`` refusals it comes back by itself."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False
        self.up_after: int | None = None
        self.refused = 0

    def get_object(self, container_name: str, object_name: str) -> Any:
        if self.down:
            self.refused += 1
            if self.up_after is not None and self.refused >= self.up_after:
                self.down = False
            raise requests.exceptions.ConnectionError("connection refused")
        return super().get_object(container_name, object_name)


def watch(deadline: float = 60.0) -> OutageWatch:
    return OutageWatch(
        deadline,
        setting="backup.storage_outage_timeout_secs",
        backoff_initial_secs=0.001,
        backoff_max_secs=0.02,
    )


@pytest.fixture
def down() -> tuple[DownDriver, LibcloudBackend]:
    driver = DownDriver()
    backend = LibcloudBackend(driver, "memory", resilience=FAST)
    backend.put("k", b"v")
    return driver, backend


def test_an_outage_past_the_retries_and_the_open_breaker_is_waited_through(
    down: tuple[DownDriver, LibcloudBackend],
) -> None:
    driver, backend = down
    outage = watch()
    waits: list[float] = []
    outage.subscribe(waits.append)
    backend.ride_outages(outage)
    driver.down, driver.up_after = True, 12  # six operations' worth of retries, and the breaker opens
    assert backend.head("k").size == 1
    assert driver.refused == 12
    assert outage.outages == 1 and not outage.down
    assert "connection refused" in (outage.last_error or "")
    assert sum(waits) == pytest.approx(outage.waited_secs) and outage.waited_secs > 0


def test_an_outage_past_the_deadline_fails_naming_the_setting(
    down: tuple[DownDriver, LibcloudBackend],
) -> None:
    driver, backend = down
    backend.ride_outages(watch(deadline=0.2))
    driver.down = True
    with pytest.raises(
        StorageOutageError, match=r"unreachable for 0.2s.*backup.storage_outage_timeout_secs"
    ) as info:
        backend.head("k")
    assert isinstance(info.value, TimeoutError) and not info.value.transient


def test_answers_are_not_outages(down: tuple[DownDriver, LibcloudBackend]) -> None:
    _, backend = down
    outage = watch()
    backend.ride_outages(outage)
    with pytest.raises(NotFoundError):
        backend.head("missing")
    assert not outage.down and outage.outages == 0


def test_the_guard_runs_before_each_retry_and_can_end_the_wait(
    down: tuple[DownDriver, LibcloudBackend],
) -> None:
    driver, backend = down
    outage = watch()
    guarded: list[bool] = []

    class TakenOver(Exception):
        pass

    def guard() -> None:
        guarded.append(driver.down)
        if len(guarded) == 3:
            raise TakenOver

    outage.guard = guard
    backend.ride_outages(outage)
    backend.head("k")
    assert guarded == []  # no failure, no guard
    driver.down = True
    with pytest.raises(TakenOver):
        backend.head("k")
    assert guarded == [True, True, True]


def test_abandoning_ends_the_wait_with_the_storage_error(down: tuple[DownDriver, LibcloudBackend]) -> None:
    driver, backend = down
    outage = watch()
    outage.guard = outage.abandon  # the run ends while storage is down
    backend.ride_outages(outage)
    driver.down = True
    with pytest.raises(Exception, match="cannot reach the service") as info:
        backend.head("k")
    assert not isinstance(info.value, StorageOutageError)


def test_without_a_watch_the_backend_fails_after_its_own_retries(
    down: tuple[DownDriver, LibcloudBackend],
) -> None:
    driver, backend = down
    backend.ride_outages(watch())
    backend.ride_outages(None)
    driver.down = True
    with pytest.raises(Exception, match="cannot reach the service"):
        backend.head("k")
    assert driver.refused == FAST.max_attempts
