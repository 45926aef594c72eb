"""Backup and restore through every security mode, against a real broker.

Each mode backs up a topic through ``source.security`` and restores it through
``target.security`` into a new topic (created by the restore, so the admin
calls go through the secure listener too); the restored records must equal
the source records exactly. Set-up and read-back use the broker's PLAINTEXT
listener, so they cannot hide a problem of libkb's.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import pytest

from integration.kafka_data import consume_all, produce
from integration.security.broker import SecureKafka
from integration.security.modes import KEEP_FOREVER, MODES, mode, run_backup, run_restore, topic_name
from integration.services.kafka import create_kafka_topic, delete_kafka_topic
from libkb.format.segment import Record

pytestmark = pytest.mark.kafka

RECORDS = 300
PARTITIONS = 3


def _content(records: dict[int, list[Record]]) -> dict[int, list[tuple[Any, ...]]]:
    """Everything but the offset: what a restore must reproduce exactly."""
    return {p: [r[1:] for r in rs] for p, rs in records.items()}


@pytest.mark.parametrize("name", MODES)
def test_backup_and_restore_through_security_mode(
    secure_kafka: SecureKafka, name: str, tmp_path: Path
) -> None:
    plain = secure_kafka.plaintext.bootstrap_servers
    source = create_kafka_topic(
        secure_kafka.plaintext, topic_name(name), partitions=PARTITIONS, config=KEEP_FOREVER
    )
    target = f"{source}-restored"
    try:
        produce(plain, source, RECORDS, partitions=PARTITIONS)
        expected = consume_all(plain, source, PARTITIONS)
        assert sum(len(v) for v in expected.values()) == RECORDS

        how = mode(secure_kafka, name)
        backup = run_backup(how.endpoint, how.security, tmp_path, [source])
        assert backup.status == "complete", backup
        assert backup.topics == [source]
        assert backup.records == RECORDS, backup

        restored = run_restore(how.endpoint, how.security, tmp_path, {source: target})
        assert restored.status == "complete", restored
        assert restored.created_topics == [target], restored

        actual = consume_all(plain, target, PARTITIONS)
        assert _content(actual) == _content(expected)
        # A fresh topic restored in order gets the source's offsets too.
        assert {p: [r[0] for r in rs] for p, rs in actual.items()} == {
            p: [r[0] for r in rs] for p, rs in expected.items()
        }
    finally:
        for topic in (source, target):
            with contextlib.suppress(Exception):  # best effort: the broker goes with the package
                delete_kafka_topic(secure_kafka.plaintext, topic)
