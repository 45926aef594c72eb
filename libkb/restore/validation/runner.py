"""``validation run``: check a restore on its cluster, write the evidence report, tell whom it concerns.

The run: find what to compare (:mod:`.subject`), run each enabled check in
the original tool's order (an error in one is its failure, the others still
run), summarise, build and store the evidence report (:mod:`.evidence`),
sign it (:mod:`.signing`), then notify (:mod:`.webhooks`).
"""

from __future__ import annotations

import datetime as dt
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaException

from libkb.config.models import SourceOptions
from libkb.config.validation import ValidationConfig
from libkb.errors import ConfigError
from libkb.kafka.admin import KafkaAdmin
from libkb.kafka.clients import make_admin, make_consumer
from libkb.kafka.errors import kafka_boundary
from libkb.restore.validation.checks import (
    FAILED,
    PASSED,
    SKIPPED,
    WARNING,
    CheckResult,
    Context,
    consumer_groups,
    message_count,
    offset_range,
)
from libkb.restore.validation.content import record_content
from libkb.restore.validation.evidence import (
    SCHEMA_VERSION,
    compliance_mappings,
    evidence_key,
    seal,
    store_new,
)
from libkb.restore.validation.signing import ALGORITHM, public_key_fingerprint, sign
from libkb.restore.validation.subject import Subject, find_subject
from libkb.restore.validation.webhooks import notify, webhook_check
from libkb.storage import StorageBackend, create_backend_from_config
from libkb.version import __version__

Check = Callable[[Context], CheckResult]


@dataclass(slots=True)
class ValidationRun:
    report: dict[str, Any]
    evidence_keys: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def overall(self) -> str:
        return str(self.report["validation"]["overall_result"])


def new_report_id(now: dt.datetime) -> str:
    """Sortable by time, unique by its random tail."""
    return f"validation-{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}"


@kafka_boundary
def run_validation(
    config: ValidationConfig,
    *,
    backend: StorageBackend | None = None,
    admin: KafkaAdmin | None = None,
    consumer_factory: Callable[[SourceOptions, dict[str, Any]], Consumer] = make_consumer,
) -> ValidationRun:
    now = dt.datetime.now(dt.UTC)
    report_id = new_report_id(now)
    store = backend or create_backend_from_config(config.storage)
    try:
        target = admin or KafkaAdmin(make_admin(config.target))
        cluster_id = target.cluster_id()
        subject = find_subject(store, config.backup_id, cluster_id, config.restore_id)

        def open_consumer() -> Consumer:
            return consumer_factory(
                config.target,
                {
                    "group.id": f"libkb-{report_id}",
                    "enable.auto.commit": False,
                    "isolation.level": "read_uncommitted",
                    "auto.offset.reset": "error",
                },
            )

        ctx = Context(subject, target, config, report_id, open_consumer)
        summary = summarise(run_checks(ctx))
        report = build_report(config, subject, summary, report_id, now, cluster_id)
        run = ValidationRun(report)
        _store_evidence(store, config, report, report_id, now, run)
        run.warnings += notify(
            config.notifications, report, run.evidence_keys[0] if run.evidence_keys else None
        )
        return run
    finally:
        if backend is None:
            store.close()


def run_checks(ctx: Context) -> list[CheckResult]:
    opts = ctx.config.checks
    chosen: list[tuple[str, Check]] = []
    if opts.message_count.enabled:
        chosen.append(("MessageCountCheck", message_count))
    if opts.offset_range.enabled:
        chosen.append(("OffsetRangeCheck", offset_range))
    if opts.consumer_group_offsets.enabled:
        chosen.append(("ConsumerGroupOffsetCheck", consumer_groups))
    if opts.record_content.enabled:
        chosen.append(("RecordContentCheck", record_content))
    payload = {
        "event": "kafka_backup_validation",
        "backup_id": ctx.subject.backup_id,
        "restore_id": ctx.subject.restore.restore_id if ctx.subject.restore else None,
        "report_id": ctx.report_id,
        "pitr_timestamp": ctx.config.pitr_timestamp,
        "restored_cluster": {"bootstrap_servers": list(ctx.config.target.bootstrap_servers)},
    }
    for hook in opts.custom_webhooks:
        chosen.append((hook.name, lambda _ctx, hook=hook: webhook_check(hook, payload)))  # type: ignore[misc]
    results = []
    for name, check in chosen:
        started = time.monotonic()
        try:
            result = check(ctx)
        except Exception as exc:  # one check's error is its failure; the others still run
            message = exc.args[0].str() if isinstance(exc, KafkaException) and exc.args else str(exc)
            result = CheckResult(name, FAILED, f"check errored: {message}", {"error": message})
        elapsed = int((time.monotonic() - started) * 1000)
        results.append(CheckResult(result.check_name, result.outcome, result.detail, result.data, elapsed))
    return results


def summarise(results: list[CheckResult]) -> dict[str, Any]:
    count = {o: sum(r.outcome == o for r in results) for o in (PASSED, FAILED, SKIPPED, WARNING)}
    overall = FAILED if count[FAILED] else WARNING if count[WARNING] else PASSED
    return {
        "checks_total": len(results),
        "checks_passed": count[PASSED],
        "checks_failed": count[FAILED],
        "checks_skipped": count[SKIPPED],
        "checks_warned": count[WARNING],
        "overall_result": overall,
        "results": [
            {
                "check_name": r.check_name,
                "outcome": r.outcome,
                "detail": r.detail,
                "data": r.data,
                "duration_ms": r.duration_ms,
            }
            for r in results
        ],
        "total_duration_ms": sum(r.duration_ms for r in results),
    }


def build_report(
    config: ValidationConfig,
    subject: Subject,
    summary: dict[str, Any],
    report_id: str,
    now: dt.datetime,
    cluster_id: str | None,
) -> dict[str, Any]:
    m = subject.manifest
    tps = [(t, p) for t, info in m.topics.items() for p in range(info.partitions)]
    segments = sum(len(c.segments) for tp in tps if (c := subject.source.coverage(*tp)) is not None)
    state = subject.restore
    content = [r for r in summary["results"] if r["check_name"] == "RecordContentCheck"]
    return {
        "schema_version": SCHEMA_VERSION,
        "report_id": report_id,
        "generated_at": now.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "tool": {"name": "kafka-backup (libkb)", "version": __version__},
        "backup": {
            "id": subject.backup_id,
            "source_cluster_id": m.source_cluster_id,
            "source_brokers": [],
            "storage_backend": type(config.storage).backend,
            "pitr_timestamp": config.pitr_timestamp,
            "created_at": m.created_ms,
            "total_topics": len(m.topics),
            "total_partitions": len(tps),
            "total_segments": segments,
            "total_records": subject.source.stored_totals()[0],
        },
        "restore": {
            "restore_id": state.restore_id if state else None,
            "status": state.status if state else None,
            "target_bootstrap_servers": list(config.target.bootstrap_servers),
            "target_cluster_id": cluster_id,
            "start_time": _iso(state.created_ms) if state else None,
            "end_time": None,
            "duration_seconds": None,
            "compared": "by the restore's offset mapping" if subject.exact else "by topic name and offset",
            "notes": subject.notes,
        },
        "validation": summary,
        "integrity": {
            "backup_manifest_sha256": subject.manifest_sha256,
            "report_sha256": "",
            # Segment checksums are verified only by reading the records (RecordContentCheck).
            "checksums_valid": content[0]["outcome"] == PASSED if content else None,
            "signature_algorithm": ALGORITHM if config.evidence.signing_enabled else "none",
            "signed_by": None,
        },
        "compliance_mappings": compliance_mappings(
            [r["check_name"] for r in summary["results"]], config.evidence.retention_days
        ),
        "triggered_by": config.triggered_by,
    }


def _store_evidence(
    store: StorageBackend,
    config: ValidationConfig,
    report: dict[str, Any],
    report_id: str,
    now: dt.datetime,
    run: ValidationRun,
) -> None:
    opts = config.evidence
    key_pem = None
    if opts.signing_enabled:
        assert opts.private_key_path is not None
        key_pem = _read_key(opts.private_key_path)
        report["integrity"]["signed_by"] = public_key_fingerprint(key_pem)
    data = seal(report, compact=key_pem is not None)
    if "json" not in opts.formats:
        return
    run.evidence_keys.append(store_new(store, evidence_key(opts.prefix, report_id, "json", now), data))
    if key_pem is not None:
        signature = sign(data, key_pem, report_id, key_name="evidence.signing.private_key_path")
        key = evidence_key(opts.prefix, report_id, "sig", now)
        run.evidence_keys.append(store_new(store, key, signature.to_text().encode()))


def _read_key(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"cannot read the signing key {path}: {exc.strerror}", key="evidence.signing.private_key_path"
        ) from None


def _iso(ms: int) -> str:
    return (
        dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )
