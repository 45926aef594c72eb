"""What the GCS resumable-upload module needs of the driver."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from libkb.storage.drivers.common.calls import ConnectionCalls
from libkb.storage.drivers.gcs.errors import bucket_error


@dataclass(frozen=True, slots=True)
class GcsCalls(ConnectionCalls):
    """A request on the calling thread's connection, the retry policy, and failed
    answers about a bucket as exceptions."""

    def fail(self, resp: Any, bucket: str) -> Exception:
        """The exception for a failed answer about the bucket (not one object)."""
        return bucket_error(resp, bucket, driver=self.owner)
