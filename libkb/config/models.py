"""Typed job settings with their defaults (the original tool's where it has the key)."""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from libkb.config.encryption import EncryptionOptions
from libkb.storage.secrets import storage_secrets
from libkb.storage.settings import BackendConfig

MiB = 1024 * 1024
#: ``backup.storage_outage_timeout_secs`` and ``restore.``'s default: a storage outage of minutes is
#: ridden through (a bucket briefly unreachable must not crash-loop a continuous backup).
STORAGE_OUTAGE_TIMEOUT_SECS = 900.0


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
    #: Kerberos (``sasl_mechanism: GSSAPI``): the broker's service name (librdkafka's default ``kafka``).
    sasl_kerberos_service_name: str | None = None
    #: Keytab file; without it librdkafka uses the ticket cache that ``kinit`` filled.
    sasl_keytab_path: str | None = None
    #: A ``krb5.conf`` other than the system's (``KRB5_CONFIG``).
    sasl_krb5_config_path: str | None = None
    #: The client principal; with a keytab, by default the keytab's first principal.
    sasl_kerberos_principal: str | None = None
    #: The command librdkafka runs to get and renew tickets (librdkafka's ``kinit`` line by default).
    sasl_kerberos_kinit_cmd: str | None = None


def _pattern_matches(name: str, pattern: str) -> bool:
    """A glob, or with a leading ``~`` a regular expression searched in the name (as the original tool).

    ``~`` cannot start a Kafka topic name, so the two never collide.
    """
    if pattern.startswith("~"):
        return re.search(pattern[1:], name) is not None
    return fnmatch.fnmatchcase(name, pattern)


@dataclass(frozen=True, slots=True)
class TopicSelection:
    """Glob patterns (``*``, ``?``, ``[..]``), or ``~regex``, matched against whole topic names."""

    include: tuple[str, ...] = ("*",)
    exclude: tuple[str, ...] = ()

    def matches(self, topic: str) -> bool:
        return self.matches_any(topic)

    def matches_any(self, *names: str) -> bool:
        """Some name matches an include pattern and none matches an exclude pattern.

        A restore passes the source name and its mapped target name, so
        ``include: [test-restore-*]`` with ``orders: test-restore-orders`` selects ``orders``.
        """
        included = any(_pattern_matches(n, p) for n in names for p in self.include)
        return included and not any(_pattern_matches(n, p) for n in names for p in self.exclude)


@dataclass(frozen=True, slots=True)
class ConnectionOptions:
    """TCP settings of a cluster's connections (the original tool's ``connection`` block)."""

    #: librdkafka ``socket.keepalive.enable``.
    tcp_keepalive: bool = True
    #: librdkafka ``socket.nagle.disable``.
    tcp_nodelay: bool = True


@dataclass(frozen=True, slots=True)
class SourceOptions:
    bootstrap_servers: tuple[str, ...]
    topics: TopicSelection = field(default_factory=TopicSelection)
    security: KafkaSecurity = field(default_factory=KafkaSecurity)
    client_config: dict[str, Any] = field(default_factory=dict)
    connection: ConnectionOptions = field(default_factory=ConnectionOptions)

    def __repr__(self) -> str:
        # client_config may carry librdkafka secrets (ssl.keystore.password, ...): mask them.
        shown = {k: "***" if _secret_property(k) else v for k, v in self.client_config.items()}
        return (
            f"SourceOptions(bootstrap_servers={self.bootstrap_servers!r}, topics={self.topics!r}, "
            f"security={self.security!r}, client_config={shown!r}, connection={self.connection!r})"
        )

    def secrets(self) -> list[str]:
        """The secret values of these settings, for masking in logs."""
        values = [self.security.sasl_password, self.security.ssl_key_password]
        values += [str(v) for k, v in self.client_config.items() if _secret_property(k)]
        return [v for v in values if v]


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


HOUR_MS = 3_600_000


@dataclass(frozen=True, slots=True)
class RetentionOptions:
    """``backup.retention``: the prune a backup run applies to its own backup (as ``kafka-backup prune``)."""

    #: Prune segments whose records are all older than this (milliseconds; ``max_age: 30d``).
    max_age_ms: int | None = None
    #: Prune the oldest segments until the backup's segments take at most this many bytes.
    max_total_bytes: int | None = None
    #: The newest this many segments of each partition are always kept.
    keep_segments: int = 0
    #: Continuous mode: prune this often (``interval: 1h``); every run also prunes at its end.
    interval_ms: int = HOUR_MS


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
    #: zstd only: ``stream`` compresses a segment's blocks with one context (codec zstd-stream,
    #: format version 7), ``block`` each block alone (codec zstd, version 1).
    zstd_mode: str = "stream"
    #: zstd-stream: a new zstd frame every this many blocks (what a read from mid-segment decodes first).
    zstd_restart_blocks: int = 128
    #: Where a partition with nothing stored yet starts.
    start_offset: str = "earliest"
    #: ``start_offset: !specific {topic: {partition: offset}}``: these partitions start here instead
    #: (clamped to what the partition holds); the others start at ``start_offset``.
    start_offsets: dict[str, dict[int, int]] = field(default_factory=dict)
    #: Keep following new records until stopped (SIGTERM/SIGINT).
    continuous: bool = False
    #: Snapshot mode: stop at the offsets seen at start.
    stop_at_current_offsets: bool = True
    include_internal_topics: bool = False
    #: With ``include_internal_topics``: only these internal topics (empty: all of them).
    internal_topics: tuple[str, ...] = ()
    #: Continue a backup id the Rust kafka-backup wrote, in libkb's format beside its files.
    adopt_rust_backup: bool = False
    #: A backed-up topic found with another topic id (deleted and re-created): ``fail`` (stop), or
    #: ``new_incarnation`` (back up the new log separately, as the topic's next incarnation).
    on_topic_recreated: str = "fail"
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
    max_bytes_in_flight: int = 64 * MiB
    compression_threads: int = 2
    #: A run's lease on its backup id expires this long after its last renewal.
    lease_ttl_secs: float = 60.0
    #: Continuous mode: look for new matching topics and partitions this often.
    topic_refresh_secs: float = 60.0
    #: How long storage may stay unreachable before the run fails (0: fail after the backend's retries).
    storage_outage_timeout_secs: float = STORAGE_OUTAGE_TIMEOUT_SECS
    #: How long one poll of the consumer waits when no record is ready (see :attr:`poll_timeout_secs`).
    poll_interval_ms: int = 200
    #: Prune the backup's oldest segments at the end of each run, and periodically in continuous mode.
    retention: RetentionOptions | None = None

    @property
    def poll_timeout_secs(self) -> float:
        """The consumer's poll timeout: ``poll_interval_ms`` kept within 10 ms .. 1 s.

        A record that arrives ends the wait at once, so the value only decides
        how often an idle loop wakes up. Above 1 s a stop signal and time-based
        segment closing would wait for the poll; below 10 ms an idle backup spins.
        """
        return min(max(self.poll_interval_ms, 10), 1000) / 1000

    @property
    def include_internal(self) -> bool | frozenset[str]:
        """What generic patterns may reach among internal topics: all, none, or these names."""
        if self.include_internal_topics and self.internal_topics:
            return frozenset(self.internal_topics)
        return self.include_internal_topics


#: ``backup.on_topic_recreated``: stop, or back up the re-created topic as a new incarnation.
TOPIC_RECREATED_CHOICES = ("fail", "new_incarnation")

#: ``restore.repartitioning`` strategies: Java's default partitioner, or round robin over every record.
REPARTITION_STRATEGIES = ("murmur2", "automatic")


@dataclass(frozen=True, slots=True)
class TopicRepartitioning:
    """How one target topic is restored by key (the original tool's ``repartitioning`` entry)."""

    #: ``murmur2``: a keyed record goes where Java's default partitioner puts it; ``automatic``:
    #: every record goes round robin by its source offset.
    strategy: str = "murmur2"
    #: The target topic's partition count; None: the existing topic's, or the backed-up one.
    target_partitions: int | None = None


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
    #: Records per produce batch (librdkafka ``batch.num.messages``), as in the original tool.
    produce_batch_size: int = 100_000
    #: Bytes per produce batch (librdkafka ``batch.size``); a batch ends at whichever comes first.
    produce_batch_bytes: int = 1024 * 1024
    produce_acks: str = "all"
    #: How long the broker may take to acknowledge one produce request (librdkafka ``request.timeout.ms``).
    produce_timeout_ms: int = 30_000
    #: How long a record may take to be delivered, retries included, and the final flush may wait
    #: (librdkafka ``message.timeout.ms``).
    delivery_timeout_ms: int = 300_000
    #: Groups whose offsets are translated (None: every group in the snapshot).
    consumer_groups: tuple[str, ...] | None = None
    #: Apply the translated offsets to the groups on the target cluster.
    reset_consumer_offsets: bool = False
    create_topics: bool = False
    default_replication_factor: int | None = None
    #: Write into the source topic on the source cluster (refused otherwise).
    allow_restore_to_source: bool = False
    #: Add the original tool's ``x-original-offset``, ``x-original-timestamp`` and
    #: ``x-source-partition`` headers (off: records stay exact).
    include_original_offset_header: bool = False
    #: Restoring a backup of the Rust tool: keep the ``x-original-offset``, ``x-original-timestamp``
    #: and ``x-source-cluster`` headers it appended to each stored record (off: they are left out).
    keep_rust_tool_headers: bool = False
    #: Names this restore's state, so a re-run resumes it (default: derived from the config).
    restore_id: str | None = None
    #: Write the restore's offset mapping (JSON) to this file when it completes.
    offset_report: str | None = None
    #: Restore records by key into another partition count: ``auto`` (a target topic that exists
    #: with another partition count than the backed-up one), ``always`` or ``never``.
    repartition: str = "auto"
    #: target topic -> how it is restored by key (the original tool's key).
    repartitioning: dict[str, TopicRepartitioning] = field(default_factory=dict)
    #: Before restoring, delete every record of the target partitions the restore writes
    #: (DeleteRecords up to their high watermarks), once per restore: a re-run never purges
    #: what it wrote. The target then holds exactly the backup's records.
    purge_topics: bool = False
    #: Kafka topic (or ``*``) -> the incarnation restored when the backup holds several (a topic
    #: deleted and re-created): its number, or ``"latest"``. Unset: each incarnation is its own
    #: source topic, and two of them restored into one target are refused.
    incarnations: dict[str, int | str] = field(default_factory=dict)
    #: How long storage may stay unreachable before the run fails (0: fail after the backend's retries).
    storage_outage_timeout_secs: float = STORAGE_OUTAGE_TIMEOUT_SECS


@dataclass(frozen=True, slots=True)
class MetricsOptions:
    #: Off without a ``metrics`` block; a block without ``enabled`` turns it on, as in the original tool.
    enabled: bool = False
    port: int = 8080
    bind_address: str = "127.0.0.1"
    path: str = "/metrics"
    #: Keep serving this long after a run that ends by itself, so the last values get scraped.
    keep_alive_seconds: float = 0.0
    #: At most this many topic/partition label sets per metric (0: no limit).
    max_partition_labels: int = 100
    #: A Prometheus Pushgateway to push to (one-shot runs end before a scrape); None: no pushing.
    #: Out of the repr: it may carry a password (``https://user:password@host``).
    pushgateway_url: str | None = field(default=None, repr=False)
    #: Seconds between pushes while the run goes (0: only the final push).
    push_interval_seconds: float = 30.0

    def secrets(self) -> list[str]:
        """The Pushgateway URL's password, if it has one."""
        if self.pushgateway_url is None:
            return []
        password = urlsplit(self.pushgateway_url).password
        return [password, unquote(password)] if password else []


@dataclass(frozen=True, slots=True)
class LoggingOptions:
    """The job file's ``logging`` block; ``-v``/``-vv``/``--log-level`` win over ``level``."""

    #: libkb's level (``debug``, ``info``, ...); None: the command line's default (info).
    level: str | None = None
    #: ``text`` lines or ``json`` (one object per line).
    format: str = "text"


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
    logging: LoggingOptions = field(default_factory=LoggingOptions)
    #: Client-side envelope encryption: the keys (None: segments are written in the clear).
    encryption: EncryptionOptions | None = None
    path: str | None = None
    #: What loading said about keys of the original tool that libkb replaces (one line each).
    warnings: tuple[str, ...] = ()

    def secrets(self) -> list[str]:
        """Every secret value of the job (passwords, keys, tokens), for masking in logs."""
        values: list[str] = []
        for cluster in (self.source, self.target):
            if cluster is not None:
                values += cluster.secrets()
        return values + storage_secrets(self.storage) + self.metrics.secrets()
