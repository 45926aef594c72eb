"""One writer per backup: numbered lease generations, each created with ``put_if_absent``.

Object stores have no locks; a create-only write is the one atomic primitive
every backend offers. A run takes a backup by creating the next lease
generation ``{id}/lease/{n:012d}.json``: two runs that both find generation
``n`` free (released or expired) both try to create ``n+1`` and exactly one
succeeds. The current generation is never deleted and re-created (a slow
contender would delete the winner's fresh lease), and renewal overwrites
only the holder's own key, so a holder that was taken over cannot clobber
its successor: it sees the higher generation at its next renewal and stops.

The holder renews every ``ttl/3``; a lease not renewed for ``ttl`` (its
holder died) can be taken over after one extra ``ttl`` of grace. Expiry uses
the writers' clocks, so hosts should keep time (NTP). ``{id}/lease.json``,
written by earlier builds, is honoured as generation 0 and never written.

A storage outage stops renewals but not the run: it waits for storage
(:mod:`libkb.storage.outage`). Its lease is re-checked before it writes
again (:meth:`Lease.ensure_fresh`, the fence of every write): if another run
created a higher generation meanwhile, this run stops and writes nothing
more; if the lease expired but nobody took over, the run takes the next
generation itself with a create-only write, so that a contender that saw the
expired lease cannot win too.
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

from libkb.errors import FormatError, LibkbError
from libkb.format.models import lease_generation_key, parse_lease_key
from libkb.format.strict import integer, load_object, string
from libkb.storage import NotFoundError, StorageBackend, StorageError
from libkb.storage.outage import is_down

log = logging.getLogger("libkb.backup")

_PREFIX_TAIL = "/lease/"


class LeaseHeldError(LibkbError):
    """Another run holds the backup's lease; ``holder`` says who, without advice (callers add their own)."""

    def __init__(self, message: str, holder: str = "") -> None:
        super().__init__(message)
        self.holder = holder or message


class LeaseLostError(LibkbError):
    """This run's lease was taken over or could not be renewed; it must stop writing."""


@dataclass(frozen=True, slots=True)
class LeaseInfo:
    """The body of one lease object; ``generation`` and ``released`` are absent from lease.json."""

    run_id: str
    host: str
    pid: int
    expires_ms: int
    generation: int = 0
    released: bool = False

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "run_id": self.run_id,
                "host": self.host,
                "pid": self.pid,
                "expires_ms": self.expires_ms,
                "generation": self.generation,
                "released": self.released,
            }
        ).encode()

    @classmethod
    def parse(cls, data: bytes, name: str) -> LeaseInfo:
        """The lease object ``name`` holds; FormatError naming it and the field if it is not one."""
        body = load_object(data, name, "lease")
        released = body.get("released", False)
        if type(released) is not bool:
            raise FormatError(f"{name}: released: expected true or false, found {type(released).__name__}")
        return cls(
            string(body.get("run_id"), name, "run_id"),
            string(body.get("host"), name, "host"),
            integer(body.get("pid"), name, "pid"),
            integer(body.get("expires_ms"), name, "expires_ms"),
            integer(body.get("generation", 0), name, "generation"),
            released,
        )

    @classmethod
    def from_json(cls, data: bytes) -> LeaseInfo | None:
        """The lease ``data`` holds, or None if it is not a lease object (unreadable: it blocks nobody)."""
        try:
            return cls.parse(data, "lease")
        except FormatError:
            return None

    def live(self, now_ms: int, grace_ms: int = 0) -> bool:
        """Whether this lease still holds ``grace_ms`` after its expiry (a released one never does)."""
        return not self.released and self.expires_ms + grace_ms > now_ms


def read_lease(backend: StorageBackend, key: str) -> LeaseInfo | None:
    """The lease object at ``key``; None if there is none or it cannot be parsed."""
    try:
        return LeaseInfo.parse(backend.get(key), key)
    except NotFoundError:
        return None
    except FormatError as exc:
        log.warning("unreadable lease object (treated as no lease): %s", exc)
        return None


def lease_objects(backend: StorageBackend, key: str) -> list[tuple[int, str]]:
    """(generation, object key) of every lease object of a backup, lowest first.

    ``key`` is the backup's :func:`~libkb.format.models.lease_key`. One listing
    of ``{id}/lease`` finds both the generations under ``{id}/lease/`` and an
    earlier build's ``{id}/lease.json`` (generation 0).
    """
    backup_id = _backup_id(key)
    found = []
    for name in backend.list(f"{backup_id}/lease"):
        parsed = parse_lease_key(name)
        if parsed is not None and parsed[0] == backup_id:
            found.append((parsed[1], name))
    return sorted(found)


def current_lease(backend: StorageBackend, key: str) -> tuple[str, LeaseInfo | None] | None:
    """The highest lease generation's object key and content (None: unreadable); None if no lease."""
    objects = lease_objects(backend, key)
    if not objects:
        return None
    top = objects[-1][1]
    return top, read_lease(backend, top)


def lease_is_live(backend: StorageBackend, key: str) -> bool:
    """Whether a run holds the backup's lease now: its current generation is unreleased and unexpired.

    A live ``lease.json`` also counts even below a newer generation: an earlier
    build that knows only that object may be writing.
    """
    now = _now_ms()
    for _, name in _deciding(lease_objects(backend, key)):
        current = read_lease(backend, name)
        if current is not None and current.live(now):
            return True
    return False


class Lease:
    """Acquire, renew in a thread, release. ``lost`` is set if renewal finds a successor."""

    def __init__(self, backend: StorageBackend, key: str, run_id: str, ttl_secs: float) -> None:
        """``key`` is the backup's :func:`~libkb.format.models.lease_key`."""
        self.backend = backend
        self.key = key
        self.backup_id = _backup_id(key)
        self.run_id = run_id
        self.ttl_ms = int(ttl_secs * 1000)
        #: The generation this run holds (set by :meth:`acquire`).
        self.generation: int | None = None
        self.lost = threading.Event()
        #: Why the lease was lost, once it was.
        self.lost_reason = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: Serializes renewals: the renewal thread's and a writer's re-check after an outage.
        self._renewing = threading.Lock()
        self._in_renewal = threading.local()
        #: When our generation was last written (monotonic), and the expiry it then carried.
        self._renewed = 0.0
        self._expires_ms = 0

    @property
    def held_generation(self) -> int:
        if self.generation is None:
            raise RuntimeError("the lease is not acquired")
        return self.generation

    @property
    def held_key(self) -> str:
        """The object of the generation this run holds."""
        return lease_generation_key(self.backup_id, self.held_generation)

    def _info(self, generation: int, *, released: bool = False) -> LeaseInfo:
        now = _now_ms()
        expires = now if released else now + self.ttl_ms
        return LeaseInfo(self.run_id, socket.gethostname(), os.getpid(), expires, generation, released)

    def _write(self, key: str, info: LeaseInfo, *, create: bool = False) -> bool:
        """Write our lease object (``create``: only if absent); remember when, for :meth:`ensure_fresh`."""
        started = time.monotonic()
        if create:
            if not self.backend.put_if_absent(key, info.to_json()):
                return False
        else:
            self.backend.put(key, info.to_json())
        # Counted from before the write: the stored expiry is at least this late.
        self._renewed, self._expires_ms = started, info.expires_ms
        return True

    def acquire(self) -> None:
        """Create the next lease generation, or raise LeaseHeldError naming the holder."""
        objects = lease_objects(self.backend, self.key)
        target = 1
        if objects:
            top, top_key = objects[-1]
            current = read_lease(self.backend, top_key)
            if top > 0 and current is not None and current.run_id == self.run_id and not current.released:
                # Our create landed but its response was lost; this is a retry that found it.
                self.generation = top
                self._expires_ms = current.expires_ms  # not known when: re-checked before the first write
                self._start()
                return
            now = _now_ms()
            for _, name in _deciding(objects):
                holder = current if name == top_key else read_lease(self.backend, name)
                if holder is not None and holder.live(now, self.ttl_ms):
                    raise self._held(holder)
            if current is None or not current.released:
                holder_id = current.run_id if current else "unreadable"
                log.warning("taking over the expired lease of run %s on %s", holder_id, top_key)
            target = top + 1
        self._create(target)
        self.generation = target
        # Older generations only cost a listing entry; contenders always aim above the highest.
        for generation, name in objects:
            if generation < target:
                with contextlib.suppress(StorageError):
                    self.backend.delete(name)
        self._start()

    def _create(self, target: int) -> None:
        """Win generation ``target`` with a create-only write, or raise LeaseHeldError."""
        key = lease_generation_key(self.backup_id, target)
        if not self._write(key, self._info(target), create=True):
            winner = read_lease(self.backend, key)
            if winner is None or winner.run_id != self.run_id:  # else: a retry of our own create
                raise self._held(winner, same_moment=True)
        # A contender that listed long ago may re-create a generation the winner
        # above it already cleaned up: only the highest generation holds.
        higher = [g for g, _ in lease_objects(self.backend, self.key) if g > target]
        if higher:
            with contextlib.suppress(StorageError):
                self.backend.delete(key)
            successor = read_lease(self.backend, lease_generation_key(self.backup_id, max(higher)))
            raise self._held(successor, same_moment=True)

    def _held(self, holder: LeaseInfo | None, *, same_moment: bool = False) -> LeaseHeldError:
        what = "Wait for it to finish, stop it, or use another backup_id."
        race = f"another run took the lease on backup {self.backup_id!r} at the same moment"
        if holder is None:
            said = race
        elif same_moment:
            said = f"{race}: run {holder.run_id} on host {holder.host} (pid {holder.pid})"
        else:
            said = (
                f"backup {self.backup_id!r} is being written by run {holder.run_id} on host "
                f"{holder.host} (pid {holder.pid}); {takeover_time(holder, self.ttl_ms, _now_ms())}"
            )
        return LeaseHeldError(f"{said}. {what}", said)

    def _start(self) -> None:
        self._thread = threading.Thread(target=self._renew_loop, name="libkb-lease", daemon=True)
        self._thread.start()

    def _successor(self) -> str | None:
        """Why this run no longer holds the lease, or None if it still does."""
        objects = lease_objects(self.backend, self.key)
        if objects and objects[-1][0] > self.held_generation:
            top, key = objects[-1]
            taker = read_lease(self.backend, key)
            if taker is None:
                return f"generation {top} ({key}) was created"
            return f"run {taker.run_id} on host {taker.host} (pid {taker.pid}) took generation {top}"
        current = read_lease(self.backend, self.held_key)
        if current is None:
            return f"{self.held_key} is gone or unreadable"
        if current.run_id != self.run_id:
            return f"{self.held_key} names run {current.run_id}"
        return None

    def renew(self) -> bool:
        """One renewal: check that the lease is still ours, then extend it. False (and ``lost``) if not.

        The check and the overwrite are not atomic, but the overwrite only
        touches this run's own generation, never a successor's, and happens
        before our lease expires. Once it has expired (storage was unreachable
        for a TTL), the run takes the next generation instead: a create-only
        write, which a contender aiming at the same generation cannot also win.
        """
        with self._renewing:
            self._in_renewal.active = True
            try:
                return self._renew()
            finally:
                self._in_renewal.active = False

    def _renew(self) -> bool:
        if self.lost.is_set():
            return False
        why = self._successor()
        if why is None:
            if _now_ms() < self._expires_ms:
                self._write(self.held_key, self._info(self.held_generation))
                return True
            why = self._retake()
            if why is None:
                return True
        log.error("lease %s was taken over (%s); stopping", self.held_key, why)
        self.lost_reason = why
        self.lost.set()
        return False

    def _retake(self) -> str | None:
        """Our expired lease, found with no successor: create the next generation. Why not, if we lose."""
        expired = self.held_key
        target = self.held_generation + 1
        try:
            self._create(target)
        except LeaseHeldError as exc:
            return f"after {expired} expired, {exc.holder}"
        log.warning("lease %s expired while storage was unreachable; took generation %d", expired, target)
        self.generation = target
        with contextlib.suppress(StorageError):
            self.backend.delete(expired)
        return None

    def ensure_fresh(self) -> None:
        """Before a write: raise LeaseLostError unless the lease is surely still ours.

        A lease renewed within most of its TTL is (a successor needs two
        TTLs). After longer, storage was unreachable: the lease is checked,
        and renewed or retaken, in storage first (a failure there raises the
        storage error: the write could not have gone through either).
        """
        if getattr(self._in_renewal, "active", False):
            return  # the renewal's own storage calls
        if not self.lost.is_set() and time.monotonic() - self._renewed < self.ttl_ms * 0.8 / 1000:
            return
        if not self.renew():
            raise LeaseLostError(
                f"lost the lease on backup {self.backup_id!r} ({self.lost_reason}); "
                "this run stops and writes nothing more"
            )

    def _renew_loop(self) -> None:
        interval = self.ttl_ms / 3000
        renewed = time.monotonic()
        while not self._stop.wait(interval):
            try:
                if not self.renew():
                    return
                renewed = time.monotonic()
            except StorageError as exc:
                log.warning("could not renew lease %s: %s", self.held_key, exc)
                # Storage down: the run's writes re-check the lease before they go through
                # (ensure_fresh). Any other failure does not heal by waiting: stop in time.
                if not is_down(exc) and (time.monotonic() - renewed) * 1000 > self.ttl_ms * 0.8:
                    log.error("lease %s could not be renewed in time; stopping", self.held_key)
                    self.lost_reason = f"it could not be renewed: {exc}"
                    self.lost.set()
                    return

    def drop(self) -> None:
        """Stop renewing and delete every lease object of the backup, ours last: the backup is gone.

        Only for deleting a whole backup, once everything else under its id is
        deleted. Until our generation goes, it is live and blocks every other
        run; one that lists after it went finds no lease and starts afresh.
        """
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.lost.is_set():
            raise LeaseLostError(f"lost the lease on backup {self.backup_id!r} while deleting it")
        for generation, name in lease_objects(self.backend, self.key):
            if generation < self.held_generation:  # a higher one would be a successor's: never ours to delete
                with contextlib.suppress(NotFoundError):
                    self.backend.delete(name)
        with contextlib.suppress(NotFoundError):
            self.backend.delete(self.held_key)

    def release(self) -> None:
        """Stop renewing and mark our generation released, so the next run need not wait.

        The object stays: deleting it would let numbering restart at 1 while a
        slow contender still aims at an older generation.
        """
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.lost.is_set() or self.generation is None:
            return
        try:
            current = read_lease(self.backend, self.held_key)
            if current is not None and current.run_id == self.run_id:
                self.backend.put(self.held_key, self._info(self.held_generation, released=True).to_json())
        except StorageError as exc:
            log.warning("could not release lease %s (it will expire): %s", self.held_key, exc)


def takeover_time(holder: LeaseInfo, ttl_ms: int, now_ms: int) -> str:
    """When another run may take ``holder``'s lease over: one ``ttl_ms`` of grace after it expires.

    A run refuses a lease while ``expires_ms + ttl_ms`` (its own TTL) is ahead;
    the holder's renewals push ``expires_ms`` on, so this holds only if it stops renewing.
    """
    if not holder.live(now_ms, ttl_ms):
        return "it may be taken over now"
    at = _iso(holder.expires_ms + ttl_ms)
    wait = -(-(holder.expires_ms + ttl_ms - now_ms) // 1000)
    if holder.live(now_ms):
        return (
            f"its lease is valid until {_iso(holder.expires_ms)}; if its holder stops renewing it, "
            f"another run may take it over from {at} (one TTL later)"
        )
    return (
        f"its lease expired at {_iso(holder.expires_ms)} (its holder stopped renewing it); "
        f"another run may take it over from {at}, in {wait} s (one TTL of grace)"
    )


def _iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms / 1000))


def _backup_id(key: str) -> str:
    """The backup id of a :func:`~libkb.format.models.lease_key` (or of one lease object's key)."""
    if key.endswith(_PREFIX_TAIL):
        return key[: -len(_PREFIX_TAIL)]
    parsed = parse_lease_key(key)
    if parsed is None:
        raise ValueError(f"{key!r} is not a lease key")
    return parsed[0]


def _deciding(objects: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """The lease objects that can block a run: the highest generation, and lease.json if present.

    A live lease.json below newer generations means an earlier build, which
    knows nothing of generations, is writing: it must block as well.
    """
    if not objects:
        return []
    out = [objects[-1]]
    if objects[0][0] == 0 and objects[0] != objects[-1]:
        out.append(objects[0])
    return out


def _now_ms() -> int:
    return int(time.time() * 1000)
