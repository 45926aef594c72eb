"""Job files written for the original (Rust) tool load unchanged, and its keys keep their meaning.

The files in ``tests/config/rust/`` use every key its v0.17.4 config structs
accept (and the ones its documentation adds), in the combinations of its
example files.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from libkb.config import JobConfig, load_config
from libkb.config.loader import _Loader
from libkb.kafka.producer import producer_batch_settings
from libkb.storage import AzureConfig, GcsConfig, MemoryConfig, S3Config
from libkb.storage.drivers.azure import build_azure_driver

FILES = Path(__file__).parent / "rust"
NAMES = sorted(p.name for p in FILES.glob("*.yaml"))

#: The keys each file sets that libkb replaces (and warns about), in the order they are reported.
WARNED = {
    "azure-backup.yaml": [
        "offset_storage",
        "backup.checkpoint_interval_secs",
        "backup.sync_interval_secs",
        "backup.include_offset_headers",
        "backup.source_cluster_id",
    ],
    "azure-restore.yaml": ["offset_storage", "restore.checkpoint_state", "restore.checkpoint_interval_secs"],
    "continuous-backup.yaml": [],
    "documented-backup.yaml": [],
    "every-key-backup.yaml": [
        "offset_storage",
        "source.connection.keepalive_time_secs",
        "source.connection.keepalive_interval_secs",
        "source.connection.connections_per_broker",
        "backup.checkpoint_interval_secs",
        "backup.sync_interval_secs",
        "backup.source_cluster_id",
        "metrics.update_interval_ms",
    ],
    "every-key-restore.yaml": [
        "target.connection.keepalive_time_secs",
        "target.connection.keepalive_interval_secs",
        "target.connection.connections_per_broker",
        "restore.checkpoint_state",
        "restore.checkpoint_interval_secs",
        "restore.consumer_group_strategy",
        "restore.produce_acks",
    ],
    "filesystem-backup.yaml": [],
    "filesystem-restore.yaml": ["restore.checkpoint_interval_secs"],
    "gcs-restore.yaml": ["restore.consumer_group_strategy"],
    "gssapi-backup.yaml": [],
    "gssapi-restore.yaml": [],
    "managed-identity-backup.yaml": ["backup.checkpoint_interval_secs"],
    "memory-backup.yaml": [],
    "metrics-backup.yaml": ["backup.checkpoint_interval_secs"],
    "oneshot-backup.yaml": ["backup.stop_at_current_offsets"],
    "s3-backup.yaml": ["backup.checkpoint_interval_secs"],
    "s3-restore.yaml": [],
    "snapshot-backup.yaml": ["backup.include_offset_headers"],
}

#: Every key of the original tool's job file: its config structs (v0.17.4) and, marked, the
#: keys only its documentation names. ``cluster`` is ``source`` or ``target``; storage keys
#: are per backend.
RUST_KEYS = {
    *("mode", "backup_id", "source", "target", "storage", "backup", "restore", "offset_storage"),
    *("metrics", "logging", "logging.level", "logging.format"),
    *(f"offset_storage.{k}" for k in ("backend", "db_path", "s3_key", "sync_interval_secs")),
    *("cluster.bootstrap_servers", "cluster.topics", "cluster.topics.include", "cluster.topics.exclude"),
    "cluster.security",
    *(
        f"cluster.security.{k}"
        for k in (
            "security_protocol",
            "sasl_mechanism",
            "sasl_username",
            "sasl_password",
            "ssl_ca_location",
            "ssl_certificate_location",
            "ssl_key_location",
            "sasl_kerberos_service_name",
            "sasl_keytab_path",
            "sasl_krb5_config_path",
        )
    ),
    "cluster.connection",
    *(
        f"cluster.connection.{k}"
        for k in (
            "tcp_keepalive",
            "keepalive_time_secs",
            "keepalive_interval_secs",
            "tcp_nodelay",
            "connections_per_broker",
        )
    ),
    *(
        f"storage[s3].{k}"
        for k in ("backend", "bucket", "region", "endpoint", "access_key", "secret_key", "prefix")
    ),
    *("storage[s3].path_style", "storage[s3].allow_http"),
    *("storage[s3].access_key_id", "storage[s3].secret_access_key"),  # documented
    *(
        f"storage[azure].{k}"
        for k in (
            "backend",
            "account_name",
            "container_name",
            "account_key",
            "prefix",
            "endpoint",
            "use_workload_identity",
            "client_id",
            "tenant_id",
            "client_secret",
            "sas_token",
        )
    ),
    "storage[azure].use_managed_identity",  # documented
    *(f"storage[gcs].{k}" for k in ("backend", "bucket", "prefix")),
    *("storage[gcs].credentials_file", "storage[gcs].project_id"),  # documented
    *("storage[filesystem].backend", "storage[filesystem].path", "storage[memory].backend"),
    *(
        f"backup.{k}"
        for k in (
            "segment_max_bytes",
            "segment_max_interval_ms",
            "compression",
            "compression_level",
            "start_offset",
            "continuous",
            "include_internal_topics",
            "internal_topics",
            "checkpoint_interval_secs",
            "sync_interval_secs",
            "include_offset_headers",
            "source_cluster_id",
            "stop_at_current_offsets",
            "max_concurrent_partitions",
            "poll_interval_ms",
            "consumer_group_snapshot",
            "fetch_max_bytes",
            "segment_max_records",
            "segment_max_age_secs",  # documented
        )
    ),
    *(
        f"restore.{k}"
        for k in (
            "time_window_start",
            "time_window_end",
            "source_partitions",
            "partition_mapping",
            "topic_mapping",
            "consumer_group_strategy",
            "dry_run",
            "include_original_offset_header",
            "rate_limit_records_per_sec",
            "rate_limit_bytes_per_sec",
            "max_concurrent_partitions",
            "produce_batch_size",
            "produce_acks",
            "produce_timeout_ms",
            "checkpoint_state",
            "checkpoint_interval_secs",
            "consumer_groups",
            "reset_consumer_offsets",
            "offset_report",
            "create_topics",
            "default_replication_factor",
            "repartitioning",
            "purge_topics",
            "auto_consumer_groups",
        )
    ),
    *(
        f"metrics.{k}"
        for k in (
            "enabled",
            "port",
            "bind_address",
            "path",
            "update_interval_ms",
            "keep_alive_seconds",
            "max_partition_labels",
        )
    ),
}

#: Values that are data, not sections: their keys are topic names, partitions and the like.
_DATA = {"topic_mapping", "partition_mapping", "repartitioning", "start_offset", "source_partitions"}


def job(name: str) -> JobConfig:
    return load_config(FILES / name)


def _paths(node: Mapping[str, Any], prefix: str) -> Iterator[str]:
    for key, value in node.items():
        path = f"{prefix}{key}"
        yield path
        if isinstance(value, Mapping) and key not in _DATA:
            yield from _paths(value, f"{path}.")


def key_paths(name: str) -> set[str]:
    """The key paths a file sets, with ``cluster`` for source/target and the backend in brackets."""
    data = yaml.load((FILES / name).read_text(encoding="utf-8"), Loader=_Loader)
    found = set()
    for path in _paths(data, ""):
        head, _, rest = path.partition(".")
        if head in ("source", "target") and rest:
            path = f"cluster.{rest}"
        elif head == "storage" and rest:
            path = f"storage[{data['storage']['backend']}].{rest}"
        found.add(path)
    return found


def test_every_file_is_listed() -> None:
    assert sorted(WARNED) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_each_file_loads_and_warns_about_the_keys_libkb_replaces(name: str) -> None:
    config = job(name)
    assert config.mode in ("backup", "restore")
    warned = [line.split(": ")[1] for line in config.warnings]
    assert warned == WARNED[name]
    assert all(line.startswith(f"{FILES / name}: ") for line in config.warnings)


def test_the_files_use_every_key_of_the_original_tool() -> None:
    used = set().union(*(key_paths(n) for n in NAMES))
    assert RUST_KEYS - used == set()
    assert used - RUST_KEYS == set()  # and nothing it does not know


def test_every_key_backup_means_what_it_meant() -> None:
    config = job("every-key-backup.yaml")
    assert config.source is not None
    security, connection = config.source.security, config.source.connection
    assert security.sasl_mechanism == "SCRAM-SHA-512"
    assert (security.sasl_username, security.sasl_password) == ("backup-svc", "pw-for-tests")
    assert security.ssl_key_location == "/etc/kafka/client.key"
    assert (connection.tcp_keepalive, connection.tcp_nodelay) == (False, False)
    assert config.source.topics.matches("__consumer_offsets")
    assert not config.source.topics.matches("payments-dlq")
    assert isinstance(config.storage, S3Config)
    assert (config.storage.prefix, config.storage.region) == ("clusters/payments", "ap-southeast-2")
    b = config.backup
    assert b.start_offset == "earliest"
    assert b.start_offsets == {"payments-eu": {0: 1200, 1: 1300}}
    assert (b.continuous, b.include_internal_topics, b.internal_topics) == (
        True,
        True,
        ("__consumer_offsets",),
    )
    assert b.include_internal == frozenset({"__consumer_offsets"})
    assert (b.poll_interval_ms, b.poll_timeout_secs) == (50, 0.05)
    assert (b.segment_max_records, b.fetch_max_bytes, b.compression_level) == (50000, 8388608, 9)
    m = config.metrics
    assert (m.enabled, m.port, m.bind_address, m.keep_alive_seconds, m.max_partition_labels) == (
        True,
        9100,
        "0.0.0.0",
        60,
        500,
    )
    assert (config.logging.level, config.logging.format) == ("debug", "json")


def test_every_key_restore_means_what_it_meant() -> None:
    config = job("every-key-restore.yaml")
    assert config.target is not None
    security = config.target.security
    assert security.sasl_mechanism == "GSSAPI"
    assert security.sasl_kerberos_service_name == "kafka"
    assert security.sasl_keytab_path == "/etc/security/dr.keytab"
    assert security.sasl_krb5_config_path == "/etc/security/krb5-dr.conf"
    topics = config.target.topics
    assert topics.matches("payments-eu") and topics.matches("payments-us")
    assert not topics.matches("payments-eu2") and not topics.matches("payments-test")
    assert isinstance(config.storage, AzureConfig)
    assert (config.storage.client_id, config.storage.tenant_id) == (
        "00000000-0000-0000-0000-000000000001",
        "00000000-0000-0000-0000-000000000002",
    )
    # The SAS token comes first, as there (before account_key and the service principal).
    assert config.storage.sas_token is not None and "sig=c2lnbmF0dXJl" in config.storage.sas_token
    assert build_azure_driver(config.storage).sas_token is not None
    assert "c2lnbmF0dXJl" in config.secrets() and "c2lnbmF0dXJl" not in repr(config)
    r = config.restore
    assert r.source_partitions == {"*": (0, 1)}  # the list form: every topic
    assert r.partition_mapping == {"*": {0: 1, 1: 0}}
    assert r.topic_mapping == {"payments-eu": "payments-eu-dr"}
    assert (r.time_window_start, r.time_window_end) == (1735689600000, 1735776000000)
    assert (r.produce_batch_size, r.produce_acks, r.produce_timeout_ms) == (2000, "all", 60000)
    assert r.consumer_groups == ("settlement", "fraud-scoring")
    assert r.reset_consumer_offsets  # auto_consumer_groups implies it
    assert (r.default_replication_factor, r.offset_report) == (-1, "/var/run/offset-report.json")
    assert (r.dry_run, r.include_original_offset_header, r.purge_topics) == (True, True, True)
    assert (r.rate_limit_records_per_sec, r.rate_limit_bytes_per_sec) == (20000, 52428800)
    assert config.metrics.enabled and config.metrics.port == 9101  # a block turns metrics on
    settings = producer_batch_settings(r)  # records per batch and the broker's timeout, as there
    assert (settings["batch.num.messages"], settings["request.timeout.ms"]) == (2000, 60000)


def test_documented_keys_mean_what_the_documentation_says() -> None:
    backup = job("documented-backup.yaml")
    assert isinstance(backup.storage, S3Config)
    assert (backup.storage.access_key, backup.storage.secret_key) == ("minio-user", "minio-password")
    assert backup.backup.segment_max_interval_ms == 1_800_000  # segment_max_age_secs: 1800
    assert backup.backup.poll_timeout_secs == 0.01  # 0 means as often as sensible
    restore = job("gcs-restore.yaml")
    assert isinstance(restore.storage, GcsConfig)
    assert (restore.storage.service_account_path, restore.storage.project_id) == (
        "/var/secrets/gcs.json",
        "staging-project",
    )
    azure = job("managed-identity-backup.yaml")
    assert isinstance(azure.storage, AzureConfig)
    assert azure.storage.use_managed_identity and not azure.storage.use_workload_identity
    assert azure.metrics.keep_alive_seconds == 90 and azure.metrics.max_partition_labels == 0


def test_null_and_empty_blocks_mean_their_defaults() -> None:
    assert job("filesystem-restore.yaml").restore.topic_mapping == {}
    memory = job("memory-backup.yaml")
    assert isinstance(memory.storage, MemoryConfig)
    assert not memory.metrics.enabled and memory.logging.level is None
    assert memory.backup.compression == "zstd"
    metrics = job("metrics-backup.yaml")
    assert metrics.source is not None and metrics.source.topics.exclude == ()
    assert (metrics.metrics.path, metrics.metrics.port) == ("/prometheus", 9187)


def test_modes_and_batches_keep_their_meaning() -> None:
    oneshot = job("oneshot-backup.yaml").backup
    assert oneshot.stop_at_current_offsets  # it ends: a snapshot
    assert (oneshot.compression, oneshot.compression_level) == ("lz4", 3)
    assert job("continuous-backup.yaml").backup.poll_timeout_secs == 1.0  # 2500 ms: capped
    assert job("filesystem-backup.yaml").backup.start_offset == "latest"
    assert job("azure-restore.yaml").restore.produce_batch_size == 500  # records, as there
    assert job("s3-restore.yaml").restore.produce_timeout_ms == 45000
    assert job("snapshot-backup.yaml").logging.level == "warning"
