"""What the Azure helper modules (blocks, copy) need of the driver, handed to
them as one small value instead of the driver itself."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from libkb.storage.drivers.azure.errors import response_error


@dataclass(frozen=True, slots=True)
class AzureCalls:
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

    def fail(
        self, resp: Any, container_name: str, object_name: str | None, *, head: bool = False
    ) -> Exception:
        """The exception for a failed answer (see :func:`.errors.response_error`)."""
        return response_error(
            resp, driver=self.owner, container_name=container_name, object_name=object_name, head=head
        )
