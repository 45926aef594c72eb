"""Who may write a partition's objects: one seam over the lease, fenced before every write.

Why this module exists: today one lease covers a whole backup id (see
:mod:`libkb.backup.lease`), so the run that holds it owns every partition.
Scale-out will share partitions between workers through Kafka's
consumer-group protocol, and then a partition changes owner while the
backup runs. The engine therefore never reads the lease: it asks a
:class:`PartitionOwnership` before it writes a partition's index
(:meth:`~PartitionOwnership.check`) or the backup's manifest
(:meth:`~PartitionOwnership.check_backup`). Each check returns a fencing
token (today the lease generation), which a per-partition implementation
will also put on what it writes so that storage can refuse an ousted
writer's late writes, segment keys included.
"""

from __future__ import annotations

from typing import Protocol

from libkb.backup.lease import Lease, LeaseLostError
from libkb.format.models import lease_key
from libkb.storage import StorageBackend


class PartitionOwnership(Protocol):
    """Acquire, fence each write, release. A failed fence raises :class:`LeaseLostError`."""

    def acquire(self) -> None:
        """Take ownership, or raise :class:`~libkb.backup.lease.LeaseHeldError` naming the owner."""
        ...

    def check(self, topic: str, partition: int, what: str) -> int:
        """Fence a write of the partition's objects; the fencing token, or LeaseLostError saying ``what``."""
        ...

    def check_backup(self, what: str) -> int:
        """Fence a write of the backup's own objects (the manifest); as :meth:`check`."""
        ...

    def lost(self) -> bool:
        """Whether ownership was lost since :meth:`acquire`: the run must stop writing."""
        ...

    def fence(self) -> None:
        """Raise LeaseLostError unless ownership holds (guards storage retries after an outage)."""
        ...

    def release(self) -> None:
        """Give ownership up so the next run need not wait for it to expire."""
        ...


class LeaseOwnership:
    """One lease over the whole backup id: its holder owns every partition; the token is its generation."""

    def __init__(self, backend: StorageBackend, backup_id: str, run_id: str, ttl_secs: float) -> None:
        self.backup_id = backup_id
        self.lease = Lease(backend, lease_key(backup_id), run_id, ttl_secs)

    def acquire(self) -> None:
        self.lease.acquire()

    def check(self, topic: str, partition: int, what: str) -> int:
        return self._fence(what)

    def check_backup(self, what: str) -> int:
        return self._fence(what)

    def lost(self) -> bool:
        return self.lease.lost.is_set()

    def release(self) -> None:
        self.lease.release()

    def fence(self) -> None:
        """Raise LeaseLostError unless the lease is surely ours (re-checked in storage after an outage)."""
        self.lease.ensure_fresh()

    def _fence(self, what: str) -> int:
        if self.lease.lost.is_set():
            reason = f" ({self.lease.lost_reason})" if self.lease.lost_reason else ""
            raise LeaseLostError(
                f"lost the lease on backup {self.backup_id!r}{reason}; "
                f"this run stops and writes nothing more; {what}"
            )
        try:
            self.lease.ensure_fresh()
        except LeaseLostError as exc:
            raise LeaseLostError(f"{exc}; {what}") from None
        return self.lease.held_generation
