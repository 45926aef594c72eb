"""What a driver's helper modules need of it, handed to them as one small value
instead of the driver itself (Azure and GCS, whose requests go through a
Libcloud connection)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class ConnectionCalls:
    """The driver's request seam and retry policy, for one operation.

    The driver makes a new one per operation, so a policy swapped in after
    construction (the adapter sets ``libkb_call``) is the one used. Drivers
    subclass it to add how a failed answer becomes an exception.
    """

    #: ``request(path, method=..., params=..., headers=..., data=...)`` on the
    #: *calling* thread's Libcloud connection (connections are per thread).
    request: Callable[..., Any]
    #: Run one repeatable unit of work under the adapter's retry/breaker policy.
    call: Callable[[Callable[[], Any]], Any]
    #: The driver, named in the Libcloud exceptions raised (never called).
    owner: object
