"""``backup``/``restore --format json``: one JSON document on stdout, for a result and for a failure."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from libkb.backup.engine import BackupEngine, BackupResult
from libkb.cli import main
from libkb.cli.backup import stored_partitions
from libkb.cli.results import backup_document, restore_document
from libkb.config import parse_config
from libkb.restore.mapping import OffsetMapping, PartitionMapping, SpreadPartition
from libkb.restore.result import RestoreResult
from tests.fakes import FakeKafka


def test_a_backup_result_with_the_stored_offsets_of_each_partition(tmp_path: Path) -> None:
    kafka = FakeKafka()
    kafka.cluster.create_topic("orders", partitions=2)
    for i in range(30):
        kafka.cluster.append("orders", i % 2, b"k", b"v" * 20)
    config = parse_config(
        {
            "mode": "backup",
            "backup_id": "bk",
            "source": {"bootstrap_servers": ["fake:9092"], "topics": {"include": ["orders"]}},
            "storage": {"backend": "filesystem", "path": str(tmp_path / "store")},
        },
        log_warnings=False,
    )
    result = BackupEngine(config, admin=kafka.admin(), consumer_factory=kafka.consumer_factory).run()
    partitions, warnings = stored_partitions(config, result.topics)
    document = json.loads(json.dumps(backup_document(result, partitions, warnings=warnings)))
    assert (document["command"], document["status"], document["errors"], document["warnings"]) == (
        "backup",
        "complete",
        [],
        [],
    )
    assert document["read"]["records"] == document["stored"]["records"] == 30
    assert document["stored"]["segments"] == 2 and document["stored"]["bytes"] > 0
    assert [(p["partition"], p["first_stored_offset"], p["end_offset"]) for p in document["partitions"]] == [
        (0, 0, 15),
        (1, 0, 15),
    ]


def test_an_unfinished_backup_says_why_in_errors() -> None:
    result = BackupResult("bk", "r1", "interrupted", missing_ranges=["t[0] offsets 0-4 were deleted"])
    document = backup_document(result, [], errors=["backup 'bk' was interrupted"])
    assert document["errors"] == ["backup 'bk' was interrupted"]
    assert document["warnings"] == ["t[0] offsets 0-4 were deleted"] and document["partitions"] == []


def test_a_restore_result_with_source_and_target_offsets() -> None:
    mapping = OffsetMapping(
        "bk",
        "r1",
        partitions=[PartitionMapping("orders", 0, "copy", 0, 100, [(10, 100, 5), (20, 105, 5)])],
        spread=[SpreadPartition("keys", "keys-copy", 1, 0, [(0, 3, 0, 2), (1, 2, 0, 1)])],
    )
    result = RestoreResult("bk", "r1", "complete", records=15, bytes=300, partitions=2, mapping=mapping)
    document = restore_document(result, offset_report="/tmp/report.json")
    assert (document["status"], document["restored"], document["offset_report"]) == (
        "complete",
        {"records": 15, "bytes": 300},
        "/tmp/report.json",
    )
    plain, by_key = document["partitions"]
    assert (plain["first_source_offset"], plain["last_source_offset"]) == (10, 24)
    assert (plain["target_start_offset"], plain["target_end_offset"], plain["records"]) == (100, 110, 10)
    assert (by_key["source_partitions"], by_key["records"], by_key["by_key"]) == ([0, 1], 5, True)


@pytest.mark.parametrize("command", ["backup", "restore"])
def test_a_failure_still_prints_a_json_document_and_one_error_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, command: str
) -> None:
    """A job file of the other mode fails before any run: status failed, the message, exit 1."""
    other = "restore" if command == "backup" else "backup"
    config = tmp_path / f"{other}.yaml"
    cluster = "target" if other == "restore" else "source"
    config.write_text(
        f"mode: {other}\nbackup_id: bk\n{cluster}:\n  bootstrap_servers: [x:9092]\n"
        f"storage:\n  backend: filesystem\n  path: {tmp_path / 's'}\n"
    )
    assert main([command, "--config", str(config), "--format", "json"]) == 1
    out, err = capsys.readouterr()
    document = json.loads(out)
    assert (document["command"], document["status"]) == (command, "failed")
    assert "mode is" in document["error"] and str(config) in document["error"]
    assert document["errors"] == [document["error"]]
    assert err == f"kafka-backup: error: {document['error']}\n"


def test_text_is_still_the_default(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    config = tmp_path / "restore.yaml"
    config.write_text(
        "mode: restore\nbackup_id: bk\ntarget:\n  bootstrap_servers: [x:9092]\n"
        f"storage:\n  backend: filesystem\n  path: {tmp_path / 's'}\n"
    )
    assert main(["backup", "--config", str(config)]) == 1
    assert capsys.readouterr().out == ""
