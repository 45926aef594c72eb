"""Retention: which of a backup's oldest segments a policy removes, and removing them safely.

- :mod:`.policy`: the rule (older than a moment, a size cap, the newest
  segments of each partition kept);
- :mod:`.plan`: the cuts it makes, an oldest-first prefix of each partition
  (pure);
- :mod:`.apply`: making a cut, the index first and then the deletes, so that
  a kill at any instant leaves a valid backup.

``kafka-backup prune`` (:mod:`libkb.prune`) and a backup run's
``backup.retention`` (:mod:`libkb.backup.engine`) both use them, each under
the backup's lease.
"""

from libkb.retention.apply import CutResult, apply_cut, report_oldest
from libkb.retention.plan import PartitionCut, RetentionPlan, plan_retention
from libkb.retention.policy import RetentionPolicy, format_duration

__all__ = [
    "CutResult",
    "PartitionCut",
    "RetentionPlan",
    "RetentionPolicy",
    "apply_cut",
    "format_duration",
    "plan_retention",
    "report_oldest",
]
