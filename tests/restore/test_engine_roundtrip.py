"""Backup then restore through the engines' public surface, Kafka faked: the normal paths.

Several partitions with offset gaps, a partition trimmed by retention, every
awkward record shape; the backup is compared with the source record for
record, and the restore with the backup. The engines run with the C message
packer and with its pure-Python fallback.
"""

from __future__ import annotations

import json

import pytest

from integration.kafka_data import stored_index, stored_records, use_packer
from libkb.catalog import validate_backup
from libkb.format.models import Manifest, MissingRange, manifest_key
from libkb.format.segment import SegmentReader
from libkb.restore.groups import GroupOffsetError
from libkb.storage import MemoryConfig, StorageBackend, create_backend_from_config
from tests.fakes import FakeKafka
from tests.fakes.jobs import (
    BACKUP_ID,
    PARTITIONS,
    TOPIC,
    assert_backup_exact,
    backup_config,
    backup_engine,
    content,
    expected_records,
    restore_config,
    restore_engine,
    source_kafka,
)

TARGET = f"{TOPIC}-restored"


@pytest.fixture
def memory() -> StorageBackend:
    return create_backend_from_config(MemoryConfig())


@pytest.fixture(params=["c", "python"])
def packer(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The C packer reads the fake's messages through their methods, as it reads a broker's."""
    return use_packer(str(request.param), monkeypatch)


def backed_up(memory: StorageBackend) -> FakeKafka:
    source = source_kafka()
    result = backup_engine(source, memory).run()
    assert result.status == "complete"
    return source


def test_snapshot_backup_of_several_partitions_then_restore_is_exact(
    memory: StorageBackend, packer: str
) -> None:
    source = source_kafka()
    result = backup_engine(source, memory).run()
    expected = expected_records(source.cluster)
    assert result.status == "complete" and result.records == sum(map(len, expected.values()))
    assert result.partitions == PARTITIONS and result.segments > 2 * PARTITIONS  # rotated by records
    assert_backup_exact(memory, source.cluster)
    index = stored_index(memory, BACKUP_ID, TOPIC, 2)
    assert (index.start_offset, index.end_offset) == source.cluster.watermarks(TOPIC, 2)  # from the log start

    target = FakeKafka()
    restored = restore_engine(target, memory).run()
    assert restored.status == "complete" and restored.created_topics == [TARGET]
    assert restored.records == result.records
    assert target.cluster.topics[TARGET].configs["retention.ms"] == "-1"  # the source's settings
    for p in range(PARTITIONS):
        assert content([r.stored() for r in target.cluster.records(TARGET, p)]) == content(expected[p])

    again = restore_engine(target, memory).run()  # the same restore, already complete: nothing written
    assert again.status == "complete" and again.restore_id == restored.restore_id
    assert sum(len(target.cluster.records(TARGET, p)) for p in range(PARTITIONS)) == result.records


@pytest.mark.parametrize("compression", ["lz4", "none"])
def test_other_compressions_back_up_and_restore_exactly(memory: StorageBackend, compression: str) -> None:
    """zstd is the default (above); lz4 and none go through the same transform seam."""
    source = source_kafka()
    result = backup_engine(source, memory, backup_config(compression=compression)).run()
    assert result.status == "complete"
    assert_backup_exact(memory, source.cluster)
    version = 2 if compression == "lz4" else 1  # the lowest format version that has the codec
    manifest = memory.get(manifest_key(BACKUP_ID))
    assert Manifest.from_json(manifest).compression == compression
    assert json.loads(manifest)["format_version"] == version
    for p in range(PARTITIONS):
        index = stored_index(memory, BACKUP_ID, TOPIC, p)
        assert {s.codec for s in index.segments} == {compression} and index.format_version == version
        assert all(SegmentReader(memory.get(s.key)).header.version == version for s in index.segments)

    target = FakeKafka()
    restored = restore_engine(target, memory).run()
    assert restored.status == "complete" and restored.records == result.records
    expected = expected_records(source.cluster)
    for p in range(PARTITIONS):
        assert content([r.stored() for r in target.cluster.records(TARGET, p)]) == content(expected[p])


def test_time_window_restore_keeps_the_records_inside_it_inclusive(memory: StorageBackend) -> None:
    source = backed_up(memory)
    expected = expected_records(source.cluster)
    stamps = sorted(r[1] for records in expected.values() for r in records)
    start, end = stamps[50], stamps[250]
    target = FakeKafka()
    result = restore_engine(
        target, memory, restore_config(time_window_start=start, time_window_end=end)
    ).run()
    assert result.status == "complete" and result.records == 201
    for p in range(PARTITIONS):
        inside = [r for r in expected[p] if start <= r[1] <= end]
        assert content([r.stored() for r in target.cluster.records(TARGET, p)]) == content(inside)


def test_consumer_group_offsets_are_translated_and_applied(memory: StorageBackend) -> None:
    source = backed_up(memory)
    expected = expected_records(source.cluster)
    target = FakeKafka()
    config = restore_config(consumer_groups=["billing"], reset_consumer_offsets=True)
    result = restore_engine(target, memory, config).run()
    assert result.groups_reset == ["billing"]
    # Committed 17 on partition 0: resume at the first restored record at or after it.
    first_unread = next(i for i, r in enumerate(expected[0]) if r[0] >= 17)
    # Committed past the end of partition 1: resume after its last record.
    assert target.cluster.groups["billing"] == {(TARGET, 0): first_unread, (TARGET, 1): len(expected[1])}


def test_a_group_with_active_members_is_not_reset(memory: StorageBackend) -> None:
    backed_up(memory)
    target = FakeKafka()
    target.cluster.active_groups.add("billing")
    config = restore_config(consumer_groups=["billing"], reset_consumer_offsets=True)
    with pytest.raises(GroupOffsetError, match="active member"):
        restore_engine(target, memory, config).run()
    assert "billing" not in target.cluster.groups


def test_offsets_deleted_by_retention_while_the_backup_reads_them_become_a_missing_range(
    memory: StorageBackend,
) -> None:
    source = source_kafka()
    before = expected_records(source.cluster)[0]
    cut = 80
    source.consumer_faults.after_records = (20, lambda: source.cluster.delete_records(TOPIC, 0, cut))
    result = backup_engine(source, memory).run()
    assert result.status == "complete"
    [lost] = stored_index(memory, BACKUP_ID, TOPIC, 0).missing
    assert lost == MissingRange(lost.start, cut, "retention") and 0 < lost.start < cut
    assert len(result.missing_ranges) == 1 and f"offsets {lost.start}-{cut - 1}" in result.missing_ranges[0]
    kept = [r for r in before if not lost.start <= r[0] < cut]
    assert stored_records(memory, BACKUP_ID, TOPIC, PARTITIONS)[0] == kept
    report = validate_backup(memory, BACKUP_ID, deep=True)
    assert report.ok, report.problems
    assert any(f"offsets [{lost.start}, {cut})" in w for w in report.warnings), report.warnings
