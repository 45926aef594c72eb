"""``status`` of a running job: ask its ops endpoint (``/health``, ``/ready``, ``/metrics``) over HTTP.

Read-only, like a Prometheus scrape. The health body of libkb (``state``,
``detail``) and of the original tool (``status``, ``message``) are both read,
and the metric names are the original tool's, so a job of either tool can be
asked. A job that does not answer raises :class:`JobUnreachableError`.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import requests
from prometheus_client.parser import text_string_to_metric_families

from libkb.errors import LibkbError

TIMEOUT_SECS = 5.0


class JobUnreachableError(LibkbError, ConnectionError):
    """No job answers at the ops endpoint's address."""


@dataclass(frozen=True, slots=True)
class ComponentState:
    """One component of ``/health``: kafka, storage, the run loop."""

    name: str
    state: str  # up | down | unknown (libkb); healthy | degraded | unhealthy (the original tool)
    detail: str | None = None
    last_error: str | None = None


@dataclass(frozen=True, slots=True)
class PartitionLag:
    topic: str
    partition: int
    records: int


@dataclass(frozen=True, slots=True)
class JobMetrics:
    """What ``/metrics`` says of the job's progress; ``kind`` is guessed from the families with samples."""

    kind: str  # backup | restore | unknown (nothing counted yet)
    backup_id: str | None = None
    records: int = 0
    bytes: int = 0
    segments: int = 0
    errors: int = 0
    storage_errors: int = 0
    compression_ratio: float | None = None
    last_success_ms: int | None = None
    lag: list[PartitionLag] = field(default_factory=list)  # largest first

    @property
    def lag_records(self) -> int | None:
        """Records behind the partitions' ends, in total; None when the job reports no lag (restores)."""
        return sum(p.records for p in self.lag) if self.lag else None

    def to_dict(self) -> dict[str, Any]:
        body = asdict(self)
        body["lag_records"] = self.lag_records
        return body


@dataclass(frozen=True, slots=True)
class LiveStatus:
    url: str
    checked_ms: int
    health: str  # healthy | degraded | unhealthy
    http_status: int
    uptime_secs: float | None
    ready: bool | None  # None: the job serves no /ready (the original tool)
    components: list[ComponentState]
    metrics: JobMetrics | None  # None: /metrics did not answer
    metrics_error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "checked_ms": self.checked_ms,
            "health": self.health,
            "http_status": self.http_status,
            "uptime_secs": self.uptime_secs,
            "ready": self.ready,
            "components": {
                c.name: {k: v for k, v in asdict(c).items() if k != "name"} for c in self.components
            },
            "metrics": self.metrics.to_dict() if self.metrics else None,
            "metrics_error": self.metrics_error,
        }


def live_status(
    url: str,
    *,
    metrics_path: str = "/metrics",
    backup_id: str | None = None,
    timeout: float = TIMEOUT_SECS,
    session: requests.Session | None = None,
) -> LiveStatus:
    """Ask the job at ``url`` (``http://host:port``); ``backup_id`` picks its series if several are."""
    if session is None:
        with requests.Session() as own:
            return live_status(
                url, metrics_path=metrics_path, backup_id=backup_id, timeout=timeout, session=own
            )
    base, http = url.rstrip("/"), session
    try:
        health = http.get(f"{base}/health", timeout=timeout)
    except requests.RequestException as exc:
        raise JobUnreachableError(
            f"no job answers at {base} ({_reason(exc, timeout)}); is it running, with metrics enabled on "
            "that address and port?"
        ) from None
    body = _json(health)
    if health.status_code not in (200, 503) or body is None:
        raise JobUnreachableError(
            f"{base}/health answered HTTP {health.status_code} without a health body: not a kafka-backup "
            "ops endpoint?"
        )
    ready = _ready(http, base, timeout)
    metrics, error = None, None
    try:
        answer = http.get(f"{base}{metrics_path}", timeout=timeout)
        answer.raise_for_status()
        metrics = parse_metrics(answer.text, backup_id)
    except (requests.RequestException, ValueError) as exc:
        error = f"{base}{metrics_path}: {_reason(exc, timeout)}"
    return LiveStatus(
        url=base,
        checked_ms=int(time.time() * 1000),
        health=str(body.get("status", "unknown")),
        http_status=health.status_code,
        uptime_secs=_float(body.get("uptime_secs")),
        ready=ready,
        components=_components(body.get("components")),
        metrics=metrics,
        metrics_error=error,
    )


def _ready(http: requests.Session, base: str, timeout: float) -> bool | None:
    try:
        answer = http.get(f"{base}/ready", timeout=timeout)
    except requests.RequestException:
        return None
    if answer.status_code == 404:
        return None
    return answer.status_code == 200


def _components(raw: Any) -> list[ComponentState]:
    if not isinstance(raw, dict):
        return []
    out = []
    for name, c in sorted(raw.items()):
        if not isinstance(c, dict):
            continue
        state = c.get("state", c.get("status", "unknown"))
        detail = c.get("detail", c.get("message"))
        error = c.get("last_error")
        out.append(
            ComponentState(
                str(name),
                str(state),
                None if detail is None else str(detail),
                None if error is None else str(error),
            )
        )
    return out


def parse_metrics(text: str, backup_id: str | None = None) -> JobMetrics:
    """The job's progress from Prometheus text; series of other backup ids than ``backup_id`` are skipped."""
    sums: dict[str, float] = defaultdict(float)
    seen: set[str] = set()
    ids: set[str] = set()
    lag: list[PartitionLag] = []
    for sample in _samples(text):
        name, labels, value = sample.name, sample.labels, sample.value
        sample_id = labels.get("backup_id")
        if backup_id is not None and sample_id is not None and sample_id != backup_id:
            continue
        if name == "kafka_backup_lag_records":
            if "topic" in labels and str(labels.get("partition", "")).lstrip("-").isdigit():
                lag.append(PartitionLag(labels["topic"], int(labels["partition"]), int(value)))
            continue
        sums[name] += value
        seen.add(name)
        if sample_id is not None and name in _KIND:
            ids.add(sample_id)
    kind = "restore" if "kafka_restore_records_total" in seen else "unknown"
    if "kafka_backup_records_total" in seen or lag:
        kind = "backup"
    names = _NAMES[kind] if kind != "unknown" else _NAMES["backup"]
    ratio = sums.get("kafka_backup_compression_ratio") if "kafka_backup_compression_ratio" in seen else None
    last = sums.get(names["last_success"])
    return JobMetrics(
        kind=kind,
        backup_id=backup_id or (next(iter(ids)) if len(ids) == 1 else None),
        records=int(sums[names["records"]]),
        bytes=int(sums[names["bytes"]]),
        segments=int(sums[names["segments"]]),
        errors=int(sums[names["errors"]]),
        storage_errors=int(sums["kafka_backup_storage_errors_total"]),
        compression_ratio=ratio if ratio else None,
        last_success_ms=int(last * 1000) if last else None,
        lag=sorted(lag, key=lambda p: (-p.records, p.topic, p.partition)),
    )


_NAMES = {
    "backup": {
        "records": "kafka_backup_records_total",
        "bytes": "kafka_backup_bytes_total",
        "segments": "kafka_backup_segments_total",
        "errors": "kafka_backup_errors_total",
        "last_success": "kafka_backup_last_success_timestamp_seconds",
    },
    "restore": {
        "records": "kafka_restore_records_total",
        "bytes": "kafka_restore_bytes_total",
        "segments": "kafka_restore_segments_read_total",
        "errors": "kafka_restore_errors_total",
        "last_success": "kafka_restore_last_success_timestamp_seconds",
    },
}
_KIND = {"kafka_backup_records_total", "kafka_restore_records_total"}


def _samples(text: str) -> Iterable[Any]:
    for family in text_string_to_metric_families(text):
        yield from family.samples


def _json(response: requests.Response) -> dict[str, Any] | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _reason(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, requests.Timeout):
        return f"no answer within {timeout:g}s"
    if isinstance(exc, requests.ConnectionError):
        return "connection refused or host unreachable"
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        return f"HTTP {exc.response.status_code}"
    return str(exc) or type(exc).__name__
