"""Set many groups' offsets at once: groups in parallel, each partition Kafka answers "not yet" retried.

One commit request per group (Kafka's OffsetCommit carries all of a group's
partitions); up to ``max_concurrent`` groups at a time, which is what makes
hundreds of groups take seconds instead of minutes. A partition refused for
a transient reason (coordinator moving or loading, a timeout) is sent again,
alone, with exponential backoff; any other refusal is final and reported
with Kafka's message. Fields and statuses follow the original tool's
``offset-reset-bulk`` report.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

from confluent_kafka import KafkaError
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_result,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from libkb.kafka.errors import kafka_boundary
from libkb.kafka.groups import GroupAdmin, GroupOffsetError, describe_commit_error
from libkb.kafka.types import CommittedOffset
from libkb.offsets.snapshot import TP

#: Per-partition answers worth sending again: the group's coordinator is moving, loading or slow.
TRANSIENT = frozenset(
    {
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
        KafkaError.COORDINATOR_NOT_AVAILABLE,
        KafkaError.NOT_COORDINATOR,
        KafkaError.REQUEST_TIMED_OUT,
        KafkaError._TIMED_OUT,
        KafkaError._TRANSPORT,
    }
)

Commits = Mapping[str, Mapping[TP, CommittedOffset]]


@dataclass(frozen=True, slots=True)
class PartitionFailure:
    topic: str
    partition: int
    error_code: int
    message: str


@dataclass(slots=True)
class GroupOutcome:
    group_id: str
    partitions_reset: int = 0
    partitions_failed: int = 0
    errors: list[PartitionFailure] = field(default_factory=list)
    duration_ms: float = 0.0
    retry_attempts: int = 0


@dataclass(frozen=True, slots=True)
class Performance:
    avg_latency_ms: float
    p50_latency_ms: float
    p99_latency_ms: float
    offsets_per_second: float
    max_concurrency: int
    total_retries: int


@dataclass(slots=True)
class BulkReport:
    status: str  # success | partial_success | failed
    total_groups: int
    successful_groups: int
    failed_groups: int
    total_offsets_reset: int
    total_offsets_failed: int
    group_outcomes: list[GroupOutcome]
    duration_ms: float
    performance: Performance

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@kafka_boundary
def reset_in_parallel(
    groups: GroupAdmin,
    commits: Commits,
    *,
    max_concurrent: int = 50,
    max_retries: int = 3,
    backoff_secs: float = 0.1,
) -> BulkReport:
    """Commit every group's offsets; never raises for a group, reports it instead."""
    if max_concurrent < 1 or max_retries < 0:
        raise ValueError("max_concurrent must be at least 1 and max_retries at least 0")
    started = time.monotonic()
    names = sorted(g for g, offsets in commits.items() if offsets)
    workers = max(1, min(max_concurrent, len(names)))

    def one(group: str) -> GroupOutcome:
        return _reset_group(groups, group, commits[group], max_retries, backoff_secs)

    with ThreadPoolExecutor(workers, "libkb-offset-reset") as pool:
        outcomes = list(pool.map(one, names))
    return _report(outcomes, time.monotonic() - started, workers)


def _reset_group(
    groups: GroupAdmin,
    group: str,
    offsets: Mapping[TP, CommittedOffset],
    max_retries: int,
    backoff_secs: float,
) -> GroupOutcome:
    started = time.monotonic()
    final: dict[TP, KafkaError] = {}
    pending = dict(offsets)

    def attempt() -> dict[TP, CommittedOffset]:
        """Send what is pending; returns what is worth sending again (kept in ``final`` meanwhile)."""
        nonlocal pending
        for tp in pending:
            final.pop(tp, None)
        failed = groups.commit(group, pending)
        final.update(failed)
        pending = {tp: offsets[tp] for tp, e in failed.items() if e.code() in TRANSIENT}
        return pending

    def gave_up(state: RetryCallState) -> dict[TP, CommittedOffset]:
        assert state.outcome is not None
        result: dict[TP, CommittedOffset] = state.outcome.result()
        return result

    retrying = Retrying(
        stop=stop_after_attempt(max_retries + 1),
        wait=wait_exponential(multiplier=backoff_secs, max=5.0) + wait_random(0, backoff_secs),
        retry=retry_if_result(bool),
        retry_error_callback=gave_up,
    )
    outcome = GroupOutcome(group)
    try:
        retrying(attempt)
    except GroupOffsetError as exc:  # raised by the admin wrapper itself, e.g. a closed client
        final = {tp: KafkaError(KafkaError._FAIL, str(exc)) for tp in offsets}
    outcome.retry_attempts = retrying.statistics.get("attempt_number", 1) - 1
    outcome.errors = [
        PartitionFailure(t, p, e.code(), describe_commit_error(e)) for (t, p), e in sorted(final.items())
    ]
    outcome.partitions_failed = len(final)
    outcome.partitions_reset = len(offsets) - len(final)
    outcome.duration_ms = (time.monotonic() - started) * 1000
    return outcome


def _report(outcomes: list[GroupOutcome], secs: float, workers: int) -> BulkReport:
    failed = [o for o in outcomes if o.partitions_failed]
    reset = sum(o.partitions_reset for o in outcomes)
    latencies = sorted(o.duration_ms for o in outcomes)
    if not failed:
        status = "success"
    elif len(failed) == len(outcomes):
        status = "failed"
    else:
        status = "partial_success"
    return BulkReport(
        status=status,
        total_groups=len(outcomes),
        successful_groups=len(outcomes) - len(failed),
        failed_groups=len(failed),
        total_offsets_reset=reset,
        total_offsets_failed=sum(o.partitions_failed for o in outcomes),
        group_outcomes=outcomes,
        duration_ms=secs * 1000,
        performance=Performance(
            avg_latency_ms=statistics.fmean(latencies) if latencies else 0.0,
            p50_latency_ms=_percentile(latencies, 50),
            p99_latency_ms=_percentile(latencies, 99),
            offsets_per_second=reset / secs if secs > 0 else 0.0,
            max_concurrency=workers,
            total_retries=sum(o.retry_attempts for o in outcomes),
        ),
    )


def _percentile(ordered: list[float], pct: float) -> float:
    """Nearest-rank percentile of sorted values (0 when there are none)."""
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]
