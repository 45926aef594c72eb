"""``kafka-backup prune``: retention applied to stored backups, as a run of its own.

- :mod:`.partitions`: one backup: plan, or cut the oldest segments of its
  partitions under the backup's lease (the rules: :mod:`libkb.retention`);
- :mod:`.backups`: across backup ids: delete whole backups whose newest data
  is old, the newest few always kept.
"""

from libkb.prune.backups import BackupsReport, BackupVerdict, delete_backups, plan_backups
from libkb.prune.partitions import PruneRefusedError, PruneReport, execute_prune, plan_prune

__all__ = [
    "BackupVerdict",
    "BackupsReport",
    "PruneRefusedError",
    "PruneReport",
    "delete_backups",
    "execute_prune",
    "plan_backups",
    "plan_prune",
]
