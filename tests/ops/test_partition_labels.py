"""``metrics.max_partition_labels``: per-partition series stop at the limit, as in the original tool."""

from __future__ import annotations

from prometheus_client import generate_latest

from libkb.metrics import RunMetrics


def lag_series(metrics: RunMetrics) -> list[str]:
    text = generate_latest(metrics.registry).decode()
    return [line for line in text.splitlines() if line.startswith("kafka_backup_lag_records{")]


def test_new_label_sets_beyond_the_limit_are_dropped() -> None:
    metrics = RunMetrics(max_partition_labels=2)
    for partition in range(4):
        metrics.backup_lag.labels("orders", str(partition), "b").set(10 + partition)
    metrics.backup_lag.labels("orders", "0", "b").set(99)  # a known label set keeps updating
    series = lag_series(metrics)
    assert len(series) == 2
    assert 'kafka_backup_lag_records{backup_id="b",partition="0",topic="orders"} 99.0' in series


def test_zero_means_no_limit() -> None:
    metrics = RunMetrics(max_partition_labels=0)
    for partition in range(150):
        metrics.backup_lag.labels("orders", str(partition), "b").set(1)
    assert len(lag_series(metrics)) == 150
