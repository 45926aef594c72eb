"""One writer per backup: a lease object created with ``put_if_absent`` and kept fresh.

Object stores have no locks; a create-only write is the one atomic primitive
every backend offers. The holder renews the lease every ``ttl/3``; a lease
not renewed for ``ttl`` (its holder died) can be taken over. Expiry uses the
writers' clocks, so hosts should keep time (NTP); the takeover waits one
extra ``ttl`` of grace.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass

from libkb.errors import LibkbError
from libkb.storage import NotFoundError, StorageBackend, StorageError

log = logging.getLogger("libkb.backup")


class LeaseHeldError(LibkbError):
    """Another run holds the backup's lease."""


class LeaseLostError(LibkbError):
    """This run's lease was taken over or could not be renewed; it must stop writing."""


@dataclass(frozen=True, slots=True)
class LeaseInfo:
    run_id: str
    host: str
    pid: int
    expires_ms: int

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "run_id": self.run_id,
                "host": self.host,
                "pid": self.pid,
                "expires_ms": self.expires_ms,
            }
        ).encode()

    @classmethod
    def from_json(cls, data: bytes) -> LeaseInfo | None:
        try:
            body = json.loads(data)
            return cls(str(body["run_id"]), str(body["host"]), int(body["pid"]), int(body["expires_ms"]))
        except (ValueError, KeyError, TypeError):
            return None


def read_lease(backend: StorageBackend, key: str) -> LeaseInfo | None:
    """The lease at ``key``; None if there is none or it cannot be parsed."""
    try:
        return LeaseInfo.from_json(backend.get(key))
    except NotFoundError:
        return None


def lease_is_live(backend: StorageBackend, key: str) -> bool:
    """Whether a run holds the lease at ``key`` now (it exists and has not expired)."""
    current = read_lease(backend, key)
    return current is not None and current.expires_ms > _now_ms()


class Lease:
    """Acquire, renew in a thread, release. ``lost`` is set if renewal finds a stranger."""

    def __init__(self, backend: StorageBackend, key: str, run_id: str, ttl_secs: float) -> None:
        self.backend = backend
        self.key = key
        self.run_id = run_id
        self.ttl_ms = int(ttl_secs * 1000)
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _info(self) -> LeaseInfo:
        return LeaseInfo(self.run_id, socket.gethostname(), os.getpid(), _now_ms() + self.ttl_ms)

    def acquire(self) -> None:
        if not self.backend.put_if_absent(self.key, self._info().to_json()):
            current = self._read()
            if current is not None and current.run_id == self.run_id:
                pass  # our own create succeeded and a retry saw it
            elif current is not None and current.expires_ms + self.ttl_ms > _now_ms():
                raise LeaseHeldError(
                    f"backup {self.key.rsplit('/', 1)[0]!r} is being written by run {current.run_id} "
                    f"on host {current.host} (pid {current.pid}); its lease is valid until "
                    f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(current.expires_ms / 1000))}. "
                    "Wait for it to finish, stop it, or use another backup_id."
                )
            else:
                holder = current.run_id if current else "unreadable"
                log.warning("taking over the expired lease of run %s on %s", holder, self.key)
                with contextlib.suppress(NotFoundError):
                    self.backend.delete(self.key)
                if not self.backend.put_if_absent(self.key, self._info().to_json()):
                    raise LeaseHeldError(f"another run took the lease {self.key} at the same moment")
        self._thread = threading.Thread(target=self._renew_loop, name="libkb-lease", daemon=True)
        self._thread.start()

    def _read(self) -> LeaseInfo | None:
        return read_lease(self.backend, self.key)

    def _renew_loop(self) -> None:
        interval = self.ttl_ms / 3000
        renewed = time.monotonic()
        while not self._stop.wait(interval):
            try:
                current = self._read()
                if current is None or current.run_id != self.run_id:
                    log.error("lease %s now belongs to %s; stopping", self.key, current)
                    self.lost.set()
                    return
                self.backend.put(self.key, self._info().to_json())
                renewed = time.monotonic()
            except StorageError as exc:
                log.warning("could not renew lease %s: %s", self.key, exc)
                if (time.monotonic() - renewed) * 1000 > self.ttl_ms * 0.8:
                    # Another run may take over soon; stop before two writers overlap.
                    log.error("lease %s could not be renewed in time; stopping", self.key)
                    self.lost.set()
                    return

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.lost.is_set():
            return
        try:
            current = self._read()
            if current is not None and current.run_id == self.run_id:
                self.backend.delete(self.key)
        except StorageError as exc:
            log.warning("could not release lease %s (it will expire): %s", self.key, exc)


def _now_ms() -> int:
    return int(time.time() * 1000)
