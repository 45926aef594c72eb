"""The Grafana dashboard and the Prometheus alert rules name only metrics libkb exports.

A renamed metric would otherwise leave an empty panel or an alert that never
fires, and nobody would notice until it mattered. The names come from a run's
own registry (``libkb.metrics.RunMetrics``, storage metrics included), with
the sample suffixes Prometheus derives (``_total``, ``_bucket``, ...).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from libkb.metrics import RunMetrics

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
DASHBOARD = DEPLOY / "grafana" / "kafka-backup.json"
RULES = DEPLOY / "helm" / "kafka-backup" / "files" / "prometheus-rules.yaml"
_NAME = re.compile(r"\bkafka_(?:backup|restore)_[a-z0-9_]+")
_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
}


def exported() -> set[str]:
    names: set[str] = set()
    for family in RunMetrics().registry.collect():
        names |= {family.name + suffix for suffix in _SUFFIXES[family.type]}
    return names


def dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    exprs += [var["definition"] for var in dashboard["templating"]["list"] if "definition" in var]
    return exprs


def rule_exprs() -> list[str]:
    rules: dict[str, Any] = yaml.safe_load(RULES.read_text())
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]


def test_the_names_are_collected_from_the_registry() -> None:
    names = exported()
    assert {"kafka_backup_records_total", "kafka_backup_storage_write_latency_seconds_bucket"} <= names
    assert "kafka_backup_records" not in names  # a counter is exposed with _total only


@pytest.mark.parametrize("source", ["dashboard", "rules"])
def test_every_metric_named_is_exported(source: str) -> None:
    exprs = dashboard_exprs() if source == "dashboard" else rule_exprs()
    used = {name for expr in exprs for name in _NAME.findall(expr)}
    assert used, f"no libkb metric found in the {source}"
    assert sorted(used - exported()) == []


def test_the_dashboard_covers_what_an_operator_watches() -> None:
    text = " ".join(dashboard_exprs())
    for name in (
        "kafka_backup_records_total",  # throughput
        "kafka_backup_lag_records",  # lag per partition
        "kafka_backup_compression_ratio",
        "kafka_backup_storage_write_latency_seconds_bucket",
        "kafka_backup_storage_errors_total",
        "kafka_backup_last_success_timestamp_seconds",
    ):
        assert name in text
    dashboard = json.loads(DASHBOARD.read_text())
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids)) and dashboard["uid"]
    assert all(panel["datasource"]["uid"] == "${datasource}" for panel in dashboard["panels"])
