"""Keys of the original tool libkb replaces warn (one line: key, file, what libkb does instead);
keys asking for what libkb does not do are refused with the reason; null means the default."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from libkb.config import JobConfig, load_config, parse_config
from libkb.errors import ConfigError

RESUME = "a run resumes from the segments already in storage"
RESTORE_STATE = (
    "not used: libkb keeps a restore's progress in the backup storage ({backup_id}/restores/) "
    "and a re-run resumes it without duplicates"
)
KEEPALIVE = (
    "not used: libkb turns TCP keepalive on (connection.tcp_keepalive) and librdkafka reconnects a "
    "dropped connection by itself; the probe timing is the system's (net.ipv4.tcp_keepalive_{})"
)


def job(**sections: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "mode": "restore" if "restore" in sections else "backup",
        "backup_id": "replaced",
        "source": {"bootstrap_servers": ["localhost:9092"]},
        "target": {"bootstrap_servers": ["localhost:9092"]},
        "storage": {"backend": "memory"},
    }
    for name, value in sections.items():
        if name in ("source", "target"):
            data[name] = {**data[name], **value}
        else:
            data[name] = value
    return data


def parsed(**sections: Any) -> JobConfig:
    return parse_config(job(**sections), source="job.yaml", log_warnings=False)


@pytest.mark.parametrize(
    ("sections", "line"),
    [
        (
            {"offset_storage": {"backend": "sqlite", "db_path": "/x.db"}},
            f"job.yaml: offset_storage: not used: libkb keeps no offset database; {RESUME}",
        ),
        (
            {"backup": {"checkpoint_interval_secs": 5}},
            f"job.yaml: backup.checkpoint_interval_secs: not used: libkb writes no checkpoints; {RESUME}",
        ),
        (
            {"backup": {"sync_interval_secs": 30}},
            "job.yaml: backup.sync_interval_secs: not used: libkb keeps no offset database to sync; "
            f"{RESUME}",
        ),
        (
            {"backup": {"include_offset_headers": True}},
            "job.yaml: backup.include_offset_headers: not used: libkb keeps each record's offset and "
            "timestamp in its segments and stores the records unchanged "
            "(restore.include_original_offset_header adds the headers on restore)",
        ),
        (
            {"backup": {"source_cluster_id": "east"}},
            "job.yaml: backup.source_cluster_id: not used: libkb records the source cluster's own id in "
            "the backup's manifest (kafka-backup describe shows it) and stores the records unchanged",
        ),
        (
            {"backup": {"stop_at_current_offsets": False}},
            "job.yaml: backup.stop_at_current_offsets: a backup that is not continuous stops at the "
            "offsets present when it starts (a snapshot) instead of chasing new records; use "
            "continuous: true to follow them",
        ),
        (
            {"restore": {"checkpoint_state": "/cp.json"}},
            f"job.yaml: restore.checkpoint_state: {RESTORE_STATE}",
        ),
        (
            {"restore": {"checkpoint_interval_secs": 60}},
            f"job.yaml: restore.checkpoint_interval_secs: {RESTORE_STATE}",
        ),
        (
            {"restore": {"consumer_group_strategy": "cluster-scan"}},
            "job.yaml: restore.consumer_group_strategy: not used: libkb translates consumer-group "
            "offsets exactly, from the offsets it recorded while restoring (applied with "
            "reset_consumer_offsets: true; see show-offset-mapping)",
        ),
        (
            {"restore": {"produce_acks": 1}},
            "job.yaml: restore.produce_acks: libkb produces with acks=all and an idempotent producer, "
            "so a restore and its re-runs neither lose nor duplicate records",
        ),
        (
            {"metrics": {"update_interval_ms": 250}},
            "job.yaml: metrics.update_interval_ms: not used: libkb updates its metrics as the run goes",
        ),
        (
            {"source": {"connection": {"keepalive_time_secs": 30}}},
            "job.yaml: source.connection.keepalive_time_secs: " + KEEPALIVE.format("time"),
        ),
        (
            {"target": {"connection": {"keepalive_interval_secs": 10}}},
            "job.yaml: target.connection.keepalive_interval_secs: " + KEEPALIVE.format("intvl"),
        ),
        (
            {"source": {"connection": {"connections_per_broker": 8}}},
            "job.yaml: source.connection.connections_per_broker: not used: librdkafka sends several "
            "requests at once over its one connection per broker",
        ),
    ],
)
def test_each_replaced_key_warns_in_one_line(sections: dict[str, Any], line: str) -> None:
    assert parsed(**sections).warnings == (line,)


@pytest.mark.parametrize(
    "sections",
    [
        {"backup": {"include_offset_headers": False}},
        {"backup": {"stop_at_current_offsets": False, "continuous": True}},
        {"restore": {"consumer_group_strategy": "skip"}},
        {"restore": {"consumer_group_strategy": "manual"}},
        {"restore": {"produce_acks": -1}},
        {"restore": {"produce_acks": "all"}},
        {"offset_storage": None},
        {"backup": {"checkpoint_interval_secs": None}},
    ],
)
def test_values_that_ask_for_what_libkb_does_are_quiet(sections: dict[str, Any]) -> None:
    assert parsed(**sections).warnings == ()


def test_warnings_are_logged_once_at_warning(caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    path.write_text(
        "backup_id: logged\nsource: {bootstrap_servers: ['h:1']}\nstorage: {backend: memory}\n"
        "backup: {checkpoint_interval_secs: 5}\n"
    )
    with caplog.at_level(logging.WARNING, "libkb.config"):
        load_config(path)
        assert [(r.levelno, r.name, r.getMessage()) for r in caplog.records] == [
            (
                logging.WARNING,
                "libkb.config",
                f"{path}: backup.checkpoint_interval_secs: not used: libkb writes no checkpoints; {RESUME}",
            )
        ]
        caplog.clear()
        load_config(path, log_warnings=False)
        assert caplog.records == []


@pytest.mark.parametrize(
    ("sections", "key", "words"),
    [
        (
            {"restore": {"repartitioning": {"orders": {"strategy": "murmur3"}}}},
            "restore.repartitioning.orders.strategy",
            "murmur2, automatic",
        ),
        (
            {"restore": {"repartitioning": {"orders": {"target_partition": 3}}}},
            "restore.repartitioning.orders.target_partition",
            "unknown key; did you mean 'target_partitions'?",
        ),
        (
            {"restore": {"repartitioning": {"orders": {"target_partitions": 0}}}},
            "restore.repartitioning.orders.target_partitions",
            "greater than or equal to 1",
        ),
        (
            {"restore": {"repartitioning": {"orders": 3}}},
            "restore.repartitioning.orders",
            "give {strategy: murmur2|automatic, target_partitions: N}",
        ),
        (
            {"restore": {"repartition": False, "repartitioning": {"orders": {}}}},
            "restore.repartition",
            "false contradicts repartitioning, which names topics to restore by key",
        ),
        ({"restore": {"repartition": "sometimes"}}, "restore.repartition", "must be auto"),
        ({"restore": {"consumer_group_strategy": "guess"}}, "restore.consumer_group_strategy", "skip"),
        (
            {"restore": {"produce_batch_size": 1048576}},
            "restore.produce_batch_size",
            "counts records per produce batch, 1 to 1000000 (as in the original tool); for a limit "
            "in bytes use produce_batch_bytes",
        ),
        ({"restore": {"produce_batch_bytes": 100}}, "restore.produce_batch_bytes", "1024"),
        ({"restore": {"default_replication_factor": 0}}, "restore.default_replication_factor", "-1"),
        (
            {"backup": {"segment_max_age_secs": 10, "segment_max_interval_ms": 5000}},
            "backup.segment_max_age_secs",
            "says the same as segment_max_interval_ms, in seconds; give one of them",
        ),
        ({"backup": {"start_offset": "specific"}}, "backup.start_offset", "!specific"),
        ({"offset_storage": {"backend": "postgres"}}, "offset_storage.backend", "sqlite"),
        ({"logging": {"level": "loud"}}, "logging.level", "debug"),
        (
            {"source": {"topics": {"include": ["~(unclosed"]}}},
            "source.topics.include.0",
            "regular expression",
        ),
    ],
)
def test_what_libkb_does_not_do_is_refused_with_the_reason(
    sections: dict[str, Any], key: str, words: str
) -> None:
    with pytest.raises(ConfigError) as info:
        parsed(**sections)
    assert info.value.key == key
    assert words in str(info.value)


def test_null_means_the_default_everywhere() -> None:
    config = parsed(
        source={"topics": None, "security": None, "connection": None, "client_config": None},
        backup={"compression": None, "segment_max_records": None, "internal_topics": None},
        restore={
            "topic_mapping": None,
            "partition_mapping": None,
            "source_partitions": None,
            "consumer_groups": None,
            "repartitioning": None,
        },
        metrics=None,
        logging={"level": None, "format": None},
    )
    assert config.source is not None and config.source.topics.include == ("*",)
    assert config.source.security.security_protocol == "PLAINTEXT"
    assert config.backup.compression == "zstd" and config.backup.internal_topics == ()
    assert config.restore.topic_mapping == {} and config.restore.consumer_groups is None
    assert not config.metrics.enabled and config.logging.format == "text"


def test_an_empty_include_list_selects_every_topic_as_in_the_original_tool() -> None:
    config = parsed(source={"topics": {"include": []}})
    assert config.source is not None and config.source.topics.matches("anything")


def test_a_metrics_block_turns_metrics_on_unless_it_says_not() -> None:
    assert parsed(metrics={"port": 9000}).metrics.enabled
    assert not parsed(metrics={"enabled": False, "port": 9000}).metrics.enabled
    assert not parsed().metrics.enabled


def test_the_original_specific_start_offsets_tag(tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    base = "backup_id: s\nsource: {bootstrap_servers: ['h:1']}\nstorage: {backend: memory}\n"
    path.write_text(base + "backup:\n  start_offset: !specific {orders: {0: 5, '2': 7}}\n")
    assert load_config(path).backup.start_offsets == {"orders": {0: 5, 2: 7}}
    path.write_text(base + "backup:\n  start_offset: !specific 12\n")
    with pytest.raises(ConfigError, match="!specific takes a mapping"):
        load_config(path)
    path.write_text(base + "backup:\n  start_offset: !specific {orders: {0: -1}}\n")
    with pytest.raises(ConfigError, match="is not an offset"):
        load_config(path)
