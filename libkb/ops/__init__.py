"""Running libkb as a service: the HTTP endpoints for Prometheus and Kubernetes probes."""

from libkb.ops.health import CheckRunner, Component, HealthModel, Watchdog
from libkb.ops.server import OpsServer
from libkb.ops.status import JobUnreachableError, LiveStatus, live_status

__all__ = [
    "CheckRunner",
    "Component",
    "HealthModel",
    "JobUnreachableError",
    "LiveStatus",
    "OpsServer",
    "Watchdog",
    "live_status",
]
