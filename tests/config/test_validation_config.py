"""The file of ``validation run``: the original tool's keys load; typos and PDF are refused by name."""

from __future__ import annotations

from pathlib import Path

import pytest

from libkb.config.validation import WebhookOptions, load_validation_config
from libkb.errors import ConfigError
from libkb.storage import FilesystemConfig

#: The original tool's own end-to-end validation file (scripts/test-validation), without ``pdf``.
ORIGINAL = """\
backup_id: "e2e-backup"
storage:
  backend: filesystem
  path: "/tmp/backups/data"
target:
  bootstrap_servers: ["localhost:9092"]
checks:
  message_count:
    enabled: true
    mode: exact
  offset_range:
    enabled: true
  consumer_group_offsets:
    enabled: false
evidence:
  formats: [json]
  signing:
    enabled: true
    private_key_path: "/keys/private-pkcs8.pem"
  storage:
    prefix: "evidence-reports/"
    retention_days: 2555
"""

EVERY_KEY = """\
backup_id: b1
restore_id: r-1234
storage: {backend: s3, bucket: kb, region: us-east-1, access_key: AK, secret_key: "${VALIDATION_TEST_SECRET}"}
target:
  bootstrap_servers: "k1:9092,k2:9092"
  security: {security_protocol: SASL_SSL, sasl_mechanism: SCRAM-SHA512, sasl_username: u, sasl_password: pw}
checks:
  message_count: {enabled: true, mode: sample, sample_percentage: 25, topics: [orders], fail_threshold: 3}
  offset_range: {enabled: true, verify_high_watermark: true, verify_low_watermark: false}
  consumer_group_offsets: {enabled: true, verify_all_groups: false, groups: [billing]}
  record_content: {enabled: true, max_records_per_partition: 1000}
  custom_webhooks:
    - {name: app-check, url: "http://checks.internal/validate?token=t0k3n", timeout_seconds: 30,
       expected_status_code: 202, fail_on_timeout: false}
evidence:
  formats: [json]
  signing: {enabled: false, private_key_path: /k.pem, public_key_path: /k.pub}
  storage: {prefix: audits, retention_days: 365}
notifications:
  slack: {webhook_url: "https://hooks.slack.com/services/T/B/secret"}
  pagerduty: {integration_key: pd-key, severity: error, events_url: "http://127.0.0.1:1/enqueue"}
pitr_timestamp: "2024-05-01T12:00:00Z"
triggered_by: Q2 audit
"""


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "validation.yaml"
    path.write_text(text)
    return str(path)


def test_the_original_tools_file_loads(tmp_path: Path) -> None:
    config = load_validation_config(write(tmp_path, ORIGINAL))
    assert config.backup_id == "e2e-backup" and config.target.bootstrap_servers == ("localhost:9092",)
    assert config.storage == FilesystemConfig("/tmp/backups/data")
    assert config.checks.message_count.mode == "exact" and not config.checks.consumer_group_offsets.enabled
    assert not config.checks.record_content.enabled  # libkb's addition stays off unless asked
    assert config.evidence.signing_enabled and config.evidence.private_key_path == "/keys/private-pkcs8.pem"
    assert (config.evidence.prefix, config.evidence.retention_days) == ("evidence-reports/", 2555)


def test_every_key_loads_and_secrets_stay_out_of_reprs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VALIDATION_TEST_SECRET", "s3cr3t")
    config = load_validation_config(write(tmp_path, EVERY_KEY))
    checks = config.checks
    assert (checks.message_count.sample_percentage, checks.message_count.topics) == (25, ("orders",))
    assert (
        checks.consumer_group_offsets.groups == ("billing",) and not checks.offset_range.verify_low_watermark
    )
    assert checks.record_content.max_records_per_partition == 1000
    assert checks.custom_webhooks == (
        WebhookOptions("app-check", "http://checks.internal/validate?token=t0k3n", 30.0, 202, False),
    )
    assert config.evidence.prefix == "audits/"
    assert config.notifications.pagerduty_severity == "error"
    assert (config.pitr_timestamp, config.triggered_by, config.restore_id) == (
        1714564800000,
        "Q2 audit",
        "r-1234",
    )
    shown = repr(config)
    for secret in ("s3cr3t", "pw", "t0k3n", "hooks.slack.com", "pd-key"):
        assert secret in config.secrets() or any(secret in s for s in config.secrets())
        assert secret not in shown, secret


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (ORIGINAL.replace("checks:", "chekcs:"), "chekcs: unknown key; did you mean 'checks'?"),
        (
            ORIGINAL.replace("  message_count:", "  mesage_count:"),
            "checks.mesage_count: unknown key; did you mean 'message_count'?",
        ),
        (
            ORIGINAL.replace("formats: [json]", "formats: [json, pdf]"),
            "evidence.formats: pdf is not supported",
        ),
        (
            ORIGINAL.replace('    private_key_path: "/keys/private-pkcs8.pem"\n', ""),
            "evidence.signing: signing is enabled",
        ),
        (
            ORIGINAL.replace("    mode: exact", "    mode: approximate"),
            "checks.message_count.mode: must be one of",
        ),
        (ORIGINAL.replace('backup_id: "e2e-backup"\n', ""), "backup_id: required"),
        (
            ORIGINAL.replace("target:\n", "target:\n  securty: {}\n"),
            "target.securty: unknown key; did you mean 'security'?",
        ),
    ],
)
def test_mistakes_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_validation_config(path)
    assert str(caught.value).startswith(f"{path}: {message}"), str(caught.value)
