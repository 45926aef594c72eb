"""What the Azure helper modules (blocks, copy) need of the driver."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from libkb.storage.drivers.azure.errors import response_error
from libkb.storage.drivers.common.calls import ConnectionCalls


@dataclass(frozen=True, slots=True)
class AzureCalls(ConnectionCalls):
    """A request on the calling thread's connection, the retry policy, and Azure's
    failed answers as exceptions."""

    def fail(
        self, resp: Any, container_name: str, object_name: str | None, *, head: bool = False
    ) -> Exception:
        """The exception for a failed answer (see :func:`.errors.response_error`)."""
        return response_error(
            resp, driver=self.owner, container_name=container_name, object_name=object_name, head=head
        )
