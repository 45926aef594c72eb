"""What the GCS resumable-upload module needs of the driver, handed to it as one
small value instead of the driver itself."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from libkb.storage.drivers.gcs.errors import bucket_error


@dataclass(frozen=True, slots=True)
class GcsCalls:
    """The driver's request seam and retry policy, for one operation.

    The driver makes a new one per operation, so a policy swapped in after
    construction (the adapter sets ``libkb_call``) is the one used.
    """

    #: ``request(path, method=..., params=..., headers=..., data=...)`` on the
    #: *calling* thread's Libcloud connection (connections are per thread).
    request: Callable[..., Any]
    #: Run one repeatable unit of work under the adapter's retry/breaker policy.
    call: Callable[[Callable[[], Any]], Any]
    #: The driver, named in the Libcloud exceptions raised (never called).
    owner: object

    def fail(self, resp: Any, bucket: str) -> Exception:
        """The exception for a failed answer about the bucket (not one object)."""
        return bucket_error(resp, bucket, driver=self.owner)
