"""The health model behind ``/health`` (liveness) and ``/ready`` (readiness).

The original tool always answered healthy. Here the two probes mean different
things, because Kubernetes acts on them differently:

- **liveness** fails (503) only when the run loop is stuck: a restart helps
  then. A Kafka or storage outage makes the job *degraded* (still 200): a
  restart would not bring the cluster back, only restart-loop the pod.
- **readiness** is 200 only while Kafka and storage answer their checks.

Dependency checks run in the background (:class:`CheckRunner`), so a probe
never waits on a dead broker; a check still running past its timeout counts
as failed.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("libkb.ops")

Check = Callable[[], str | None]
"""A dependency check: raises when the dependency is unusable, else returns an optional detail."""

UP, DOWN, UNKNOWN = "up", "down", "unknown"
HEALTHY, DEGRADED, UNHEALTHY = "healthy", "degraded", "unhealthy"


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret value replaced by ``***`` (bodies are served unauthenticated)."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


class Watchdog:
    """Liveness of the run loop: it ticks on every progress report.

    Stale after ``stall_secs`` without a tick (counted from creation, so a
    slow start gets the same grace). ``finish`` marks a loop that ended on
    purpose, which is not a stall.
    """

    def __init__(self, stall_secs: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.stall_secs = stall_secs
        self._clock = clock
        self._last = clock()
        self._finished = False

    def tick(self) -> None:
        self._last = self._clock()

    def finish(self) -> None:
        self._finished = True

    @property
    def idle_secs(self) -> float:
        return self._clock() - self._last

    @property
    def stalled(self) -> bool:
        return not self._finished and self.idle_secs > self.stall_secs

    def status(self) -> dict[str, Any]:
        idle = round(self.idle_secs, 1)
        if self.stalled:
            state, error = DOWN, f"no progress for {idle:.0f}s (limit {self.stall_secs:.0f}s)"
        else:
            state, error = UP, None
        return {"state": state, "last_error": error, "idle_secs": idle, "finished": self._finished}


class Component:
    """The latest result of one dependency's check, safe to read from any thread."""

    def __init__(self, name: str, timeout_secs: float, secrets: Iterable[str] = ()) -> None:
        self.name = name
        self.timeout_secs = timeout_secs
        self._secrets = tuple(s for s in secrets if s)
        self._lock = threading.Lock()
        self._state = UNKNOWN
        self._detail: str | None = None
        self._error: str | None = None
        self._checked_at: float | None = None
        self._started: float | None = None  # monotonic start of the check in flight

    def begin(self) -> None:
        with self._lock:
            self._started = time.monotonic()

    def record(self, detail: str | None, error: BaseException | None) -> None:
        with self._lock:
            self._started = None
            self._checked_at = time.time()
            if error is None:
                self._state, self._detail = UP, detail
            else:
                self._state = DOWN
                message = str(error) or type(error).__name__
                self._error = redact(f"{type(error).__name__}: {message}", self._secrets)

    def status(self) -> dict[str, Any]:
        with self._lock:
            state, error = self._state, self._error
            if self._started is not None and time.monotonic() - self._started > self.timeout_secs:
                state, error = DOWN, f"check did not answer within {self.timeout_secs:g}s"
            # last_error stays after a recovery: it tells what the last outage was.
            return {
                "state": state,
                "detail": self._detail if state == UP else None,
                "last_error": error,
                "checked_at": _iso(self._checked_at),
            }


class HealthModel:
    """Combines the watchdog and the components into the two probe answers."""

    def __init__(self, watchdog: Watchdog | None = None) -> None:
        self.started = time.monotonic()
        self.watchdog = watchdog
        self.components: dict[str, Component] = {}
        self.stopping = False

    def add(self, component: Component) -> Component:
        self.components[component.name] = component
        return component

    def _components(self) -> dict[str, dict[str, Any]]:
        return {name: c.status() for name, c in sorted(self.components.items())}

    def liveness(self) -> tuple[int, dict[str, Any]]:
        """(HTTP status, body): 503 only when the run loop has stalled."""
        components = self._components()
        if self.watchdog is not None:
            components["run_loop"] = self.watchdog.status()
        if self.watchdog is not None and self.watchdog.stalled:
            status = UNHEALTHY
        elif any(c["state"] != UP for c in components.values()):
            status = DEGRADED
        else:
            status = HEALTHY
        body = {
            "status": status,
            "uptime_secs": round(time.monotonic() - self.started, 1),
            "components": components,
        }
        return (503 if status == UNHEALTHY else 200), body

    def readiness(self) -> tuple[int, dict[str, Any]]:
        """(HTTP status, body): 200 only while every dependency check passes."""
        components = self._components()
        ready = not self.stopping and all(c["state"] == UP for c in components.values())
        body: dict[str, Any] = {"status": "ready" if ready else "not_ready", "components": components}
        if self.stopping:
            body["reason"] = "stopping"
        return (200 if ready else 503), body


@dataclass(frozen=True, slots=True)
class _Scheduled:
    component: Component
    check: Check


class CheckRunner:
    """Runs each check on its own daemon thread every ``interval_secs``, first at once.

    One thread per check: a check hung on a dead endpoint never delays the
    others, and the component reports it as timed out meanwhile.
    """

    def __init__(self, interval_secs: float = 10.0) -> None:
        self.interval_secs = interval_secs
        self._scheduled: list[_Scheduled] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def add(self, component: Component, check: Check) -> None:
        self._scheduled.append(_Scheduled(component, check))

    def start(self) -> None:
        for item in self._scheduled:
            thread = threading.Thread(
                target=self._loop, args=(item,), name=f"libkb-check-{item.component.name}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def run_once(self) -> None:
        """Run every check now, in this thread (tests, one-shot tools)."""
        for item in self._scheduled:
            _run(item)

    def _loop(self, item: _Scheduled) -> None:
        while not self._stop.is_set():
            _run(item)
            self._stop.wait(self.interval_secs)

    def close(self, timeout: float = 2.0) -> None:
        """Stop scheduling; a check stuck in a call is abandoned (its thread is a daemon)."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)


def _run(item: _Scheduled) -> None:
    item.component.begin()
    try:
        detail = item.check()
    except Exception as exc:
        log.debug("%s check failed: %s", item.component.name, exc)
        item.component.record(None, exc)
    else:
        item.component.record(detail, None)
