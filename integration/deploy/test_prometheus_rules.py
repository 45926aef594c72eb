"""The alert rules (``deploy/helm/kafka-backup/files/prometheus-rules.yaml``) under a real promtool.

``promtool check rules`` checks the syntax; ``promtool test rules`` feeds
made-up series in libkb's metric names and checks which alerts fire, so an
expression that parses but never fires (or always fires) fails here.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from integration.services import ServiceError
from integration.services.tools import promtool

RULES = (
    Path(__file__).resolve().parents[2]
    / "deploy"
    / "helm"
    / "kafka-backup"
    / "files"
    / "prometheus-rules.yaml"
)

STALE = (
    "The last snapshot run that finished successfully was 1d 6h 0m 0s ago;"
    " check the CronJob's recent Jobs and their logs."
)
LAGGING = (
    "The continuous backup's lag has grown for 30 minutes and is 50000 records; the backup cannot keep up"
    " with the producers (throughput, storage latency or a stalled partition)."
)
PUT_AUTH = 'backend="s3",operation="put",error_type="auth"'

ALERT_TESTS = {
    "evaluation_interval": "1m",
    "tests": [
        {
            # A snapshot that last succeeded 30 hours ago; another that succeeded 2 hours ago.
            "interval": "1m",
            "input_series": [
                {
                    "series": 'kafka_backup_last_success_timestamp_seconds{backup_id="stale"}',
                    "values": "0x1900",
                },
                {
                    "series": 'kafka_backup_last_success_timestamp_seconds{backup_id="fresh"}',
                    "values": "100000x1900",
                },
            ],
            "alert_rule_test": [
                {
                    "eval_time": "30h",
                    "alertname": "KafkaBackupNoRecentSuccess",
                    "exp_alerts": [
                        {
                            "exp_labels": {"severity": "critical", "backup_id": "stale"},
                            "exp_annotations": {
                                "summary": "No successful snapshot of backup stale in 26 hours",
                                "description": STALE,
                            },
                        }
                    ],
                }
            ],
        },
        {
            # Storage errors for a while, then none; lag that grows for an hour.
            "interval": "1m",
            "input_series": [
                {
                    "series": f"kafka_backup_storage_errors_total{{{PUT_AUTH}}}",
                    "values": "0+1x30 30x60",
                },
                {"series": 'kafka_backup_lag_records_sum{backup_id="events"}', "values": "20000+500x90"},
            ],
            "alert_rule_test": [
                {
                    "eval_time": "20m",
                    "alertname": "KafkaBackupStorageErrors",
                    "exp_alerts": [
                        {
                            "exp_labels": {
                                "severity": "warning",
                                "backend": "s3",
                                "operation": "put",
                                "error_type": "auth",
                            },
                            "exp_annotations": {
                                "summary": "Storage put errors (auth) on s3",
                                "description": "Storage operations failed after their retries in the last 15"
                                " minutes: credentials, permissions, bucket or network.",
                            },
                        }
                    ],
                },
                {"eval_time": "80m", "alertname": "KafkaBackupStorageErrors", "exp_alerts": []},
                {
                    "eval_time": "60m",
                    "alertname": "KafkaBackupLagGrowing",
                    "exp_alerts": [
                        {
                            "exp_labels": {"severity": "warning", "backup_id": "events"},
                            "exp_annotations": {
                                "summary": "Backup events is falling behind",
                                "description": LAGGING,
                            },
                        }
                    ],
                },
            ],
        },
    ],
}


@pytest.fixture(scope="module")
def promtool_bin() -> Path:
    try:
        return promtool()
    except ServiceError as exc:
        pytest.fail(exc.describe(), pytrace=False)


def test_promtool_checks_the_rules(promtool_bin: Path) -> None:
    done = subprocess.run([promtool_bin, "check", "rules", RULES], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 5 rules found" in done.stdout


def test_the_alerts_fire_on_the_series_they_watch(promtool_bin: Path, tmp_path: Path) -> None:
    tests = tmp_path / "alerts-test.yaml"
    tests.write_text(yaml.safe_dump({"rule_files": [str(RULES)], **ALERT_TESTS}, sort_keys=False))
    done = subprocess.run([promtool_bin, "test", "rules", tests], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
