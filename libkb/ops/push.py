"""Pushing a run's metrics to a Prometheus Pushgateway (``metrics.pushgateway_url``).

Why: a snapshot CronJob or a restore Job exits before Prometheus scrapes it,
so its last values would never be seen. The pusher sends the run's registry
every ``push_interval_seconds`` and once more when the run ends (however it
ends), under the job ``kafka-backup`` and a grouping key of the backup id and
the mode (``backup``, ``restore``; not ``operation``, which the storage
metrics use as a label), so each backup keeps one group per mode that the
next run replaces.

Credentials in the URL (``https://user:password@host``) go into an
Authorization header, never into the URL a log line or an error shows. A
failed push is a warning: the backup itself is not at stake.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import basic_auth_handler, default_handler, push_to_gateway

from libkb.ops.health import redact

__all__ = ["PUSH_JOB", "MetricsPusher", "split_credentials"]

log = logging.getLogger("libkb.ops.push")

#: The Pushgateway's ``job`` label of every push.
PUSH_JOB = "kafka-backup"

Handler = Callable[..., Callable[[], None]]


def split_credentials(url: str) -> tuple[str, tuple[str, str] | None]:
    """``url`` without its user and password, and them (decoded), if it had any."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, None
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        netloc += f":{parts.port}"
    bare = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    return bare, (unquote(parts.username or ""), unquote(parts.password or ""))


class MetricsPusher:
    """Pushes one registry to a Pushgateway periodically (a daemon thread) and on :meth:`close`."""

    def __init__(
        self,
        url: str,
        registry: CollectorRegistry,
        *,
        grouping_key: dict[str, str],
        interval_secs: float,
        timeout_secs: float = 5.0,
        secrets: Iterable[str] = (),
    ) -> None:
        self.url, credentials = split_credentials(url)
        self.registry = registry
        self.grouping_key = dict(grouping_key)
        self.interval_secs = interval_secs
        self.timeout_secs = timeout_secs
        self._secrets = [s for s in (*secrets, credentials[1] if credentials else "") if s]
        self._handler: Handler = default_handler
        if credentials is not None:
            user, password = credentials

            def with_auth(**request: Any) -> Callable[[], None]:
                return basic_auth_handler(**request, username=user, password=password)

            self._handler = with_auth
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.pushes = 0

    def __repr__(self) -> str:
        return f"MetricsPusher({self.url!r}, {self.grouping_key!r})"

    def push(self) -> bool:
        """Send the registry now; False (and a warning) when the gateway did not take it."""
        try:
            push_to_gateway(
                self.url,
                job=PUSH_JOB,
                registry=self.registry,
                grouping_key=self.grouping_key,
                timeout=self.timeout_secs,
                handler=self._handler,
            )
        except Exception as exc:  # any failure: the gateway is down, refuses, times out
            log.warning("metrics push to %s failed: %s", self.url, redact(str(exc), self._secrets))
            return False
        self.pushes += 1
        return True

    def start(self) -> None:
        """Push every ``interval_secs`` until :meth:`close` (no thread when the interval is 0)."""
        if self.interval_secs <= 0 or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._loop, name="libkb-metrics-push", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_secs):
            self.push()

    def close(self) -> None:
        """Stop the periodic pushes and push the final values."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.push()
