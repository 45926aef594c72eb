"""``validation run``: check a restore on its cluster and keep signed evidence of the result.

The original tool's post-restore validation (v0.17.4 ``validation``), built
on the restore's own records: the offset mapping it stored locates every
restored record, so counts, offset ranges and consumer-group offsets are
compared exactly, and ``RecordContentCheck`` reads the records back with the
restore's own verification (:mod:`libkb.restore.verify`).
"""

from libkb.restore.validation.runner import ValidationRun, run_validation

__all__ = ["ValidationRun", "run_validation"]
