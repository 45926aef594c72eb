"""Typed job settings with their defaults (the original tool's where it has the key)."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Any

from libkb.storage.settings import BackendConfig

MiB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class KafkaSecurity:
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = field(default=None, repr=False)
    ssl_ca_location: str | None = None
    ssl_certificate_location: str | None = None
    ssl_key_location: str | None = None
    ssl_key_password: str | None = field(default=None, repr=False)
    ssl_endpoint_identification_algorithm: str | None = None


@dataclass(frozen=True, slots=True)
class TopicSelection:
    """Glob patterns (``*``, ``?``, ``[..]``) matched against whole topic names."""

    include: tuple[str, ...] = ("*",)
    exclude: tuple[str, ...] = ()

    def matches(self, topic: str) -> bool:
        return self.matches_any(topic)

    def matches_any(self, *names: str) -> bool:
        """Some name matches an include pattern and none matches an exclude pattern.

        A restore passes the source name and its mapped target name, so
        ``include: [test-restore-*]`` with ``orders: test-restore-orders`` selects ``orders``.
        """
        included = any(fnmatch.fnmatchcase(n, p) for n in names for p in self.include)
        return included and not any(fnmatch.fnmatchcase(n, p) for n in names for p in self.exclude)


@dataclass(frozen=True, slots=True)
class SourceOptions:
    bootstrap_servers: tuple[str, ...]
    topics: TopicSelection = field(default_factory=TopicSelection)
    security: KafkaSecurity = field(default_factory=KafkaSecurity)
    client_config: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        # client_config may carry librdkafka secrets (ssl.keystore.password, ...): mask them.
        shown = {k: "***" if _secret_property(k) else v for k, v in self.client_config.items()}
        return (
            f"SourceOptions(bootstrap_servers={self.bootstrap_servers!r}, topics={self.topics!r}, "
            f"security={self.security!r}, client_config={shown!r})"
        )


_SECRET_MARKERS = (
    "password",
    "secret",
    "passphrase",
    "private.key",
    "key.pem",
    "ssl_key",
    "oauthbearer.config",
)


def _secret_property(name: str) -> bool:
    """A librdkafka property whose value must not be shown (passwords, keys, token settings)."""
    lowered = name.lower()
    return any(marker in lowered for marker in _SECRET_MARKERS)


@dataclass(frozen=True, slots=True)
class BackupOptions:
    #: Close a segment after this many uncompressed record bytes.
    segment_max_bytes: int = 128 * MiB
    #: ... or after it has been open this long.
    segment_max_interval_ms: int = 60_000
    #: ... or after this many records (None: no limit).
    segment_max_records: int | None = None
    compression: str = "zstd"
    compression_level: int = 3
    #: Where a partition with nothing stored yet starts.
    start_offset: str = "earliest"
    #: Keep following new records until stopped (SIGTERM/SIGINT).
    continuous: bool = False
    #: Snapshot mode: stop at the offsets seen at start.
    stop_at_current_offsets: bool = True
    include_internal_topics: bool = False
    #: Record consumer-group offsets on the backed-up topics at the end of a run.
    consumer_group_snapshot: bool = True
    #: Segments uploaded at once.
    max_concurrent_partitions: int = 8
    fetch_max_bytes: int | None = None
    rate_limit_bytes_per_sec: int | None = None
    isolation_level: str = "read_committed"
    #: Uncompressed bytes per compressed block (the unit of compression and of reads).
    block_bytes: int = 1 * MiB
    #: Uncompressed bytes handed off but not yet stored; bounds memory.
    max_bytes_in_flight: int = 128 * MiB
    compression_threads: int = 2
    #: A run's lease on its backup id expires this long after its last renewal.
    lease_ttl_secs: float = 60.0
    #: Continuous mode: look for new matching topics and partitions this often.
    topic_refresh_secs: float = 60.0


@dataclass(frozen=True, slots=True)
class RestoreOptions:
    """What to restore and how. Offsets are source offsets; windows are inclusive."""

    #: Only records with ``start <= timestamp <= end`` (epoch ms); None: unbounded.
    time_window_start: int | None = None
    time_window_end: int | None = None
    #: topic -> partition -> (start inclusive, end exclusive) source offsets.
    offset_ranges: dict[str, dict[int, tuple[int, int]]] = field(default_factory=dict)
    #: topic -> source partitions to restore (others are skipped).
    source_partitions: dict[str, tuple[int, ...]] = field(default_factory=dict)
    #: source topic -> target topic.
    topic_mapping: dict[str, str] = field(default_factory=dict)
    #: source topic -> source partition -> target partition ("*" applies to every topic).
    partition_mapping: dict[str, dict[int, int]] = field(default_factory=dict)
    dry_run: bool = False
    rate_limit_records_per_sec: int | None = None
    rate_limit_bytes_per_sec: int | None = None
    max_concurrent_partitions: int = 8
    #: Producer batch size in bytes (librdkafka ``batch.size``).
    produce_batch_size: int = 1024 * 1024
    produce_acks: str = "all"
    produce_timeout_ms: int = 300_000
    #: Groups whose offsets are translated (None: every group in the snapshot).
    consumer_groups: tuple[str, ...] | None = None
    #: Apply the translated offsets to the groups on the target cluster.
    reset_consumer_offsets: bool = False
    create_topics: bool = False
    default_replication_factor: int | None = None
    #: Write into the source topic on the source cluster (refused otherwise).
    allow_restore_to_source: bool = False
    #: Add ``x-libkb-source-offset`` / ``x-libkb-source-timestamp`` headers (off: records stay exact).
    include_original_offset_header: bool = False
    #: Names this restore's state, so a re-run resumes it (default: derived from the config).
    restore_id: str | None = None


@dataclass(frozen=True, slots=True)
class MetricsOptions:
    enabled: bool = False
    port: int = 8080
    bind_address: str = "127.0.0.1"
    path: str = "/metrics"


@dataclass(frozen=True, slots=True)
class JobConfig:
    """A loaded config file."""

    mode: str
    backup_id: str
    storage: BackendConfig
    source: SourceOptions | None = None
    #: The cluster a restore writes to (same shape as ``source``).
    target: SourceOptions | None = None
    backup: BackupOptions = field(default_factory=BackupOptions)
    restore: RestoreOptions = field(default_factory=RestoreOptions)
    metrics: MetricsOptions = field(default_factory=MetricsOptions)
    path: str | None = None
