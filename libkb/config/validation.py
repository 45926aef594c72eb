"""The validation file (``kafka-backup validation run --config FILE``), in the original tool's keys.

It names a backup (``backup_id``, ``storage``), the cluster a restore wrote
it to (``target``), the checks to run, where evidence goes and whom to tell.
libkb adds ``restore_id`` (which stored restore to check), ``checks.record_content``
(read every restored record back) and ``notifications.pagerduty.events_url``.
Unknown keys are errors naming the closest known key, as in job files.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from marshmallow import ValidationError, fields, post_load, validate

from libkb.config.cluster import SourceSchema
from libkb.config.fields import Strict, Timestamp
from libkb.config.loader import expand_env, load_section, read_config_file
from libkb.config.models import SourceOptions
from libkb.errors import ConfigError
from libkb.storage.secrets import storage_secrets
from libkb.storage.settings import BackendConfig, load_storage_config
from libkb.suggest import unknown_key_message


@dataclass(frozen=True, slots=True)
class MessageCountOptions:
    enabled: bool = True
    mode: str = "exact"  # exact | sample
    sample_percentage: int = 100
    topics: tuple[str, ...] = ()  # empty: every topic
    fail_threshold: int = 0


@dataclass(frozen=True, slots=True)
class OffsetRangeOptions:
    enabled: bool = True
    verify_high_watermark: bool = True
    verify_low_watermark: bool = True


@dataclass(frozen=True, slots=True)
class GroupOffsetOptions:
    enabled: bool = True
    verify_all_groups: bool = True
    groups: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RecordContentOptions:
    """libkb's: read the restored records back and compare each with the backup's."""

    enabled: bool = False
    max_records_per_partition: int = 0  # 0: every record


@dataclass(frozen=True, slots=True)
class WebhookOptions:
    name: str
    url: str = field(repr=False)  # webhook URLs often carry a token
    timeout_seconds: float = 120.0
    expected_status_code: int = 200
    fail_on_timeout: bool = True


@dataclass(frozen=True, slots=True)
class ChecksOptions:
    message_count: MessageCountOptions = field(default_factory=MessageCountOptions)
    offset_range: OffsetRangeOptions = field(default_factory=OffsetRangeOptions)
    consumer_group_offsets: GroupOffsetOptions = field(default_factory=GroupOffsetOptions)
    record_content: RecordContentOptions = field(default_factory=RecordContentOptions)
    custom_webhooks: tuple[WebhookOptions, ...] = ()


@dataclass(frozen=True, slots=True)
class EvidenceOptions:
    formats: tuple[str, ...] = ("json",)
    signing_enabled: bool = False
    private_key_path: str | None = None
    public_key_path: str | None = None
    prefix: str = "evidence-reports/"
    retention_days: int = 2555


@dataclass(frozen=True, slots=True)
class NotificationOptions:
    slack_webhook_url: str | None = field(default=None, repr=False)
    pagerduty_integration_key: str | None = field(default=None, repr=False)
    pagerduty_severity: str = "critical"
    pagerduty_events_url: str = "https://events.pagerduty.com/v2/enqueue"


@dataclass(frozen=True, slots=True)
class ValidationConfig:
    backup_id: str
    storage: BackendConfig
    target: SourceOptions
    checks: ChecksOptions = field(default_factory=ChecksOptions)
    evidence: EvidenceOptions = field(default_factory=EvidenceOptions)
    notifications: NotificationOptions = field(default_factory=NotificationOptions)
    pitr_timestamp: int | None = None
    triggered_by: str | None = None
    restore_id: str | None = None
    path: str | None = None

    def secrets(self) -> tuple[str, ...]:
        """Values never to show: the cluster's and storage's secrets, webhook URLs, the PagerDuty key."""
        n = self.notifications
        values = [*self.target.secrets(), n.slack_webhook_url, n.pagerduty_integration_key]
        values += [w.url for w in self.checks.custom_webhooks]
        values += storage_secrets(self.storage)
        return tuple(str(v) for v in values if v)


class _MessageCount(Strict):
    enabled = fields.Boolean()
    mode = fields.String(validate=validate.OneOf(["exact", "sample"]))
    sample_percentage = fields.Integer(validate=validate.Range(min=1, max=100))
    topics = fields.List(fields.String(validate=validate.Length(min=1)))
    fail_threshold = fields.Integer(validate=validate.Range(min=0))

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> MessageCountOptions:
        return MessageCountOptions(**{**data, "topics": tuple(data.get("topics", ()))})


class _OffsetRange(Strict):
    enabled = fields.Boolean()
    verify_high_watermark = fields.Boolean()
    verify_low_watermark = fields.Boolean()

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> OffsetRangeOptions:
        return OffsetRangeOptions(**data)


class _GroupOffsets(Strict):
    enabled = fields.Boolean()
    verify_all_groups = fields.Boolean()
    groups = fields.List(fields.String(validate=validate.Length(min=1)))

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> GroupOffsetOptions:
        return GroupOffsetOptions(**{**data, "groups": tuple(data.get("groups", ()))})


class _RecordContent(Strict):
    enabled = fields.Boolean()
    max_records_per_partition = fields.Integer(validate=validate.Range(min=0))

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> RecordContentOptions:
        return RecordContentOptions(**data)


class _Webhook(Strict):
    name = fields.String(required=True, validate=validate.Length(min=1))
    url = fields.Url(required=True, schemes={"http", "https"}, require_tld=False)
    timeout_seconds = fields.Float(validate=validate.Range(min=0.1))
    expected_status_code = fields.Integer(validate=validate.Range(min=100, max=599))
    fail_on_timeout = fields.Boolean()

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> WebhookOptions:
        return WebhookOptions(**data)


class _Checks(Strict):
    message_count = fields.Nested(_MessageCount)
    offset_range = fields.Nested(_OffsetRange)
    consumer_group_offsets = fields.Nested(_GroupOffsets)
    record_content = fields.Nested(_RecordContent)
    custom_webhooks = fields.List(fields.Nested(_Webhook))

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> ChecksOptions:
        return ChecksOptions(**{**data, "custom_webhooks": tuple(data.get("custom_webhooks", ()))})


class _Signing(Strict):
    enabled = fields.Boolean()
    private_key_path = fields.String()
    public_key_path = fields.String()


class _EvidenceStorage(Strict):
    prefix = fields.String()
    retention_days = fields.Integer(validate=validate.Range(min=0))


class _Evidence(Strict):
    formats = fields.List(fields.String(validate=validate.OneOf(["json", "pdf"])))
    signing = fields.Nested(_Signing)
    storage = fields.Nested(_EvidenceStorage)

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> EvidenceOptions:
        formats = tuple(dict.fromkeys(data.get("formats", ["json"])))
        if "pdf" in formats:
            raise ValidationError(
                "pdf is not supported: libkb writes the evidence report as JSON (signed when "
                "evidence.signing.enabled), which any tool can render; use [json]",
                "formats",
            )
        signing = data.get("signing", {})
        if signing.get("enabled") and not signing.get("private_key_path"):
            raise ValidationError(
                "signing is enabled: give signing.private_key_path (a PEM P-256 key)", "signing"
            )
        storage = data.get("storage", {})
        prefix = storage.get("prefix", "evidence-reports/")
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        return EvidenceOptions(
            formats=formats,
            signing_enabled=bool(signing.get("enabled", False)),
            private_key_path=signing.get("private_key_path"),
            public_key_path=signing.get("public_key_path"),
            prefix=prefix,
            retention_days=storage.get("retention_days", 2555),
        )


class _Slack(Strict):
    webhook_url = fields.Url(required=True, schemes={"http", "https"}, require_tld=False)


class _PagerDuty(Strict):
    integration_key = fields.String(required=True, validate=validate.Length(min=1))
    severity = fields.String(validate=validate.OneOf(["critical", "error", "warning", "info"]))
    events_url = fields.Url(schemes={"http", "https"}, require_tld=False)


class _Notifications(Strict):
    slack = fields.Nested(_Slack)
    pagerduty = fields.Nested(_PagerDuty)

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> NotificationOptions:
        slack, pd = data.get("slack", {}), data.get("pagerduty", {})
        defaults = NotificationOptions()
        return NotificationOptions(
            slack_webhook_url=slack.get("webhook_url"),
            pagerduty_integration_key=pd.get("integration_key"),
            pagerduty_severity=pd.get("severity", defaults.pagerduty_severity),
            pagerduty_events_url=pd.get("events_url", defaults.pagerduty_events_url),
        )


class _Top(Strict):
    pitr_timestamp = Timestamp()
    triggered_by = fields.String()
    restore_id = fields.String(validate=validate.Length(min=1))


_KEYS = (
    "backup_id",
    "storage",
    "target",
    "checks",
    "evidence",
    "notifications",
    "pitr_timestamp",
    "triggered_by",
    "restore_id",
)


def load_validation_config(path: str) -> ValidationConfig:
    """Read and check a validation file; errors name the file and the key."""
    data = expand_env(read_config_file(path), source=path)
    if not isinstance(data, Mapping):
        raise ConfigError("the file must hold a YAML mapping (key: value lines)", source=path)
    data = {k: v for k, v in data.items() if v is not None}
    unknown = [k for k in data if k not in _KEYS]
    if unknown:
        raise ConfigError(unknown_key_message(str(unknown[0]), _KEYS), key=str(unknown[0]), source=path)
    backup_id = data.get("backup_id")
    if not isinstance(backup_id, str) or not backup_id:
        raise ConfigError("required: the backup to validate", key="backup_id", source=path)
    for required in ("storage", "target"):
        if required not in data:
            what = "where the backup is stored" if required == "storage" else "the restored Kafka cluster"
            raise ConfigError(f"required: {what}", key=required, source=path)
    top = load_section(
        _Top, {k: data[k] for k in ("pitr_timestamp", "triggered_by", "restore_id") if k in data}, "", path
    )
    return ValidationConfig(
        backup_id=backup_id,
        storage=load_storage_config(data["storage"], source=path),
        target=load_section(SourceSchema, data["target"], "target", path),
        checks=load_section(_Checks, data.get("checks"), "checks", path),
        evidence=load_section(_Evidence, data.get("evidence"), "evidence", path),
        notifications=load_section(_Notifications, data.get("notifications"), "notifications", path),
        pitr_timestamp=top.get("pitr_timestamp"),
        triggered_by=top.get("triggered_by"),
        restore_id=top.get("restore_id"),
        path=path,
    )
