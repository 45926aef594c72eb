"""The rate limiter of backup and restore waits N/R seconds for N bytes (or records), on a fake clock."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest

from libkb import ratelimit
from libkb.ratelimit import RateLimiter


class FakeClock:
    """Time that moves only when the limiter waits or the test says work took time."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        """Not used by the limiter today; counted the same way so a switch to sleep() is still measured."""
        self.slept.append(seconds)
        self.now += seconds


class ClockedStop(threading.Event):
    """A stop event whose ``wait`` advances the fake clock instead of blocking."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__()
        self.clock = clock

    def wait(self, timeout: float | None = None) -> bool:
        assert timeout is not None, "the limiter must never wait without a timeout"
        if not self.is_set():
            self.clock.sleep(timeout)
        return self.is_set()


class EnteredStop(threading.Event):
    """A real stop event that tells the test when the limiter has started waiting on it."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()

    def wait(self, timeout: float | None = None) -> bool:
        self.entered.set()
        return super().wait(timeout)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """The limiter module's ``time`` replaced by the fake (other modules keep the real one)."""
    fake = FakeClock()
    monkeypatch.setattr(ratelimit, "time", SimpleNamespace(monotonic=fake.monotonic, sleep=fake.sleep))
    return fake


@pytest.mark.parametrize(("rate", "chunk", "chunks"), [(1000, 100, 50), (1_048_576, 65_536, 160), (7, 3, 11)])
def test_consuming_n_bytes_at_rate_r_waits_n_over_r_in_total(
    clock: FakeClock, rate: int, chunk: int, chunks: int
) -> None:
    start = clock.now
    limiter = RateLimiter(bytes_per_sec=rate, stop=ClockedStop(clock))
    for i in range(1, chunks + 1):
        limiter.consume(chunk)
        # never ahead of the rate once a consume returns
        assert chunk * i / rate <= clock.now - start + 1e-9
    total = chunk * chunks
    assert sum(clock.slept) == pytest.approx(total / rate)
    assert clock.now - start == pytest.approx(total / rate)


def test_time_spent_working_is_credited_against_the_wait(clock: FakeClock) -> None:
    """Reading and packing take time too: the limiter waits only for the rest."""
    start = clock.now
    limiter = RateLimiter(bytes_per_sec=1000, stop=ClockedStop(clock))
    for _ in range(20):
        clock.now += 0.04  # work on 100 bytes, which the rate allows 0.1 s for
        limiter.consume(100)
    assert clock.slept == pytest.approx([0.06] * 20)
    assert clock.now - start == pytest.approx(2.0)


def test_reading_slower_than_the_rate_never_waits(clock: FakeClock) -> None:
    limiter = RateLimiter(bytes_per_sec=1000, stop=ClockedStop(clock))
    for _ in range(10):
        clock.now += 0.5  # 100 bytes in 0.5 s: 200 B/s, under the 1000 B/s cap
        limiter.consume(100)
    assert clock.slept == []


def test_idle_time_earns_at_most_one_second_of_credit(clock: FakeClock) -> None:
    """After an idle hour, one second's worth passes at once; the rest waits for the rate."""
    limiter = RateLimiter(bytes_per_sec=1000, stop=ClockedStop(clock))
    clock.now += 3600.0
    limiter.consume(1000)
    assert clock.slept == []
    limiter.consume(500)
    assert clock.slept == pytest.approx([0.5])
    limiter.consume(2000)
    assert clock.slept == pytest.approx([0.5, 2.0])


def test_no_rate_never_waits(clock: FakeClock) -> None:
    stop = ClockedStop(clock)
    limiter = RateLimiter(bytes_per_sec=None, stop=stop)
    for _ in range(100):
        limiter.consume(1 << 30)
    assert clock.slept == []
    assert clock.now == 1000.0


def test_a_stop_set_before_the_wait_returns_at_once(clock: FakeClock) -> None:
    """A real Event that is already set: a wait of ~11 days returns immediately (the clock is frozen)."""
    stop = threading.Event()
    stop.set()
    limiter = RateLimiter(bytes_per_sec=1, stop=stop)
    limiter.consume(1_000_000)
    limiter.consume(1_000_000)
    assert clock.now == 1000.0


def test_setting_stop_ends_a_wait_under_way(clock: FakeClock) -> None:
    """A shutdown request (SIGTERM) must not sit out the rest of a long rate-limit wait."""
    stop = EnteredStop()
    limiter = RateLimiter(bytes_per_sec=1, stop=stop)  # 1 B/s: consuming 10**6 bytes would wait ~11.6 days
    worker = threading.Thread(target=limiter.consume, args=(1_000_000,), daemon=True)
    worker.start()
    assert stop.entered.wait(10), "the limiter never started waiting"
    assert worker.is_alive()
    stop.set()
    worker.join(10)  # generous bound for a loaded machine; the wait ends as soon as stop is set
    assert not worker.is_alive(), "a set stop event did not end the wait"


def test_records_and_bytes_each_keep_their_own_rate(clock: FakeClock) -> None:
    """Restore limits both: the wait is the longer of the two."""
    limiter = RateLimiter(bytes_per_sec=1000, records_per_sec=10, stop=ClockedStop(clock))
    limiter.consume(nbytes=100, records=1)  # 0.1 s of either
    limiter.consume(nbytes=100, records=20)  # records: 2 s more, bytes 0.1 s
    assert clock.slept == pytest.approx([0.1, 2.0])


def test_a_slow_phase_earns_no_burst_beyond_one_second(clock: FakeClock) -> None:
    """A changed behaviour for restore: the old limiter averaged since the start.

    After 10 s of slow going (500 bytes at 1000 B/s), it let the next 9,500
    bytes through at once. The token bucket lets through one second's worth
    and waits for the rest.
    """
    limiter = RateLimiter(bytes_per_sec=1000, stop=ClockedStop(clock))
    limiter.consume(nbytes=500)
    clock.now += 10.0
    limiter.consume(nbytes=5000)
    assert clock.slept == pytest.approx([0.5, 4.0])  # then 5 s of bytes less 1 s of burst credit


def test_partition_threads_share_one_budget(clock: FakeClock) -> None:
    """Two threads consuming at once are paid for one after the other, not each at the full rate."""
    stop = threading.Event()
    stop.set()  # waits return at once; only the accounting is checked
    limiter = RateLimiter(records_per_sec=100, stop=stop, burst_secs=0.0)
    threads = [threading.Thread(target=limiter.consume, kwargs={"records": 100}) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert limiter._paid_until[1] == pytest.approx(clock.now + 8.0)
