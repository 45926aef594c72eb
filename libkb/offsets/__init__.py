"""Consumer-group offsets on a cluster: snapshots stored next to a backup, rollback, verify, bulk reset.

:mod:`.snapshot` is the stored snapshot (pure), :mod:`.store` keeps snapshots
in any storage backend, :mod:`.compare` diffs a snapshot with a cluster and
plans a rollback (pure), :mod:`.bulk` sets many groups' offsets in parallel,
and :mod:`.rollback` puts it together: every change refuses active groups,
stores a snapshot first and can be undone.
"""

from libkb.offsets.bulk import BulkReport, reset_in_parallel
from libkb.offsets.compare import Mismatch, Verification, compare, plan_rollback
from libkb.offsets.rollback import (
    Cluster,
    RollbackResult,
    reset_with_snapshot,
    rollback,
    take_snapshot,
    verify,
)
from libkb.offsets.snapshot import OffsetSnapshot, check_snapshot_id
from libkb.offsets.store import SnapshotNotFoundError, SnapshotStore, snapshot_key

__all__ = [
    "BulkReport",
    "Cluster",
    "Mismatch",
    "OffsetSnapshot",
    "RollbackResult",
    "SnapshotNotFoundError",
    "SnapshotStore",
    "Verification",
    "check_snapshot_id",
    "compare",
    "plan_rollback",
    "reset_in_parallel",
    "reset_with_snapshot",
    "rollback",
    "snapshot_key",
    "take_snapshot",
    "verify",
]
