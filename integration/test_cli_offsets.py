"""The consumer-group offset commands against a real broker: snapshots, rollback, execute, bulk, script.

One backup and one restore for the module: 30 records in each of two
partitions, restored from the 11th record of each on (a time window), so a
committed source offset ``c >= 10`` translates to target offset ``c - 10``
and translation is visible. Every test uses consumer groups of its own.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient

from integration.kafka_data import BASE_TS, produce
from integration.services import KafkaEndpoint, S3Bucket, create_kafka_topic, delete_kafka_topic
from integration.storage.configs import s3_config
from libkb.backup.engine import BackupEngine
from libkb.cli import main
from libkb.config import parse_config
from libkb.kafka.groups import GroupAdmin, describe_commit_error
from libkb.kafka.types import CommittedOffset
from libkb.offsets import Cluster, SnapshotStore, rollback, take_snapshot, verify
from libkb.restore.engine import RestoreEngine
from libkb.storage import create_backend_from_config

pytestmark = pytest.mark.kafka
BIN = Path(sys.executable).parent  # where kafka-backup is installed

#: Committed on the source before the backup: group suffix -> {partition: offset}.
BACKED_UP = {
    "exec": {0: 15, 1: 20},
    "busy": {0: 11},
    "bulk-a": {0: 12},
    "bulk-b": {1: 30},
    "bulk-c": {0: 10, 1: 11},
    "script": {0: 25, 1: 14},
    "restore": {0: 13, 1: 16},
}


@dataclass(frozen=True)
class Restored:
    bootstrap: str
    store: str  # the backups' location (a directory)
    source: str
    target: str
    prefix: str  # of every group name of the module
    restore_file: Path
    backup_file: Path

    def group(self, suffix: str) -> str:
        return f"{self.prefix}-{suffix}"


@pytest.fixture(scope="module")
def restored(kafka_service: KafkaEndpoint, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Restored]:
    bootstrap = kafka_service.bootstrap_servers
    prefix = f"t-offsets-{uuid.uuid4().hex[:10]}"
    source, target = f"{prefix}-src", f"{prefix}-dst"
    create_kafka_topic(kafka_service, source, partitions=2, config={"retention.ms": "-1"})
    try:
        produce(bootstrap, source, 60, partitions=2)  # record i: partition i % 2, timestamp BASE_TS + i s
        for suffix, offsets in BACKED_UP.items():
            commit(bootstrap, f"{prefix}-{suffix}", {(source, p): o for p, o in offsets.items()})
        root = tmp_path_factory.mktemp("offsets")
        store = root / "backups"
        storage = {"backend": "filesystem", "path": str(store)}
        backup_job = {
            "mode": "backup",
            "backup_id": "bk",
            "source": {"bootstrap_servers": [bootstrap], "topics": {"include": [source]}},
            "storage": storage,
        }
        assert BackupEngine(parse_config(backup_job)).run().status == "complete"
        restore_job = {
            "mode": "restore",
            "backup_id": "bk",
            "target": {"bootstrap_servers": [bootstrap], "topics": {"include": [target]}},
            "storage": storage,
            "restore": {
                "topic_mapping": {source: target},
                "create_topics": True,
                "time_window_start": BASE_TS
                + 20_000,  # records 20.. : the first 10 of each partition left out
            },
        }
        assert RestoreEngine(parse_config(restore_job)).run().status == "complete"
        restore_file, backup_file = root / "restore.yaml", root / "backup.yaml"
        restore_file.write_text(yaml.safe_dump(restore_job))
        backup_file.write_text(yaml.safe_dump(backup_job))
        yield Restored(bootstrap, str(store), source, target, prefix, restore_file, backup_file)
    finally:
        for topic in (source, target):
            with contextlib.suppress(Exception):  # best effort: a failed cleanup must not fail the tests
                delete_kafka_topic(kafka_service, topic)


@pytest.fixture(autouse=True)
def _cli_logging() -> Iterator[None]:
    from libkb.cli.logs import unconfigure

    yield
    unconfigure()


# -- helpers -------------------------------------------------------------------------------------


def commit(bootstrap: str, group: str, offsets: Mapping[tuple[str, int], int | CommittedOffset]) -> None:
    """Commit as a consumer of ``group`` would (with metadata where given)."""
    parts = []
    for (topic, partition), value in offsets.items():
        if isinstance(value, CommittedOffset) and value.metadata is not None:
            parts.append(TopicPartition(topic, partition, value.offset, metadata=value.metadata))
        else:
            parts.append(TopicPartition(topic, partition, value if isinstance(value, int) else value.offset))
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        consumer.commit(offsets=parts, asynchronous=False)
    finally:
        consumer.close()


def committed(bootstrap: str, group: str) -> dict[tuple[str, int], CommittedOffset]:
    return GroupAdmin(AdminClient({"bootstrap.servers": bootstrap})).committed(group)


def offsets_on(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    return {p: o.offset for (t, p), o in committed(bootstrap, group).items() if t == topic}


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def shell(command: str, **env: str) -> subprocess.CompletedProcess[str]:
    """A printed command line, run as a user would paste it (kafka-backup on PATH)."""
    environment = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", **env}
    return subprocess.run(
        ["bash", "-c", command], capture_output=True, text=True, timeout=300, env=environment
    )


def snapshot_id(text: str) -> str:
    found = re.search(r"snap-\d{13}-[0-9a-f]{8}", text)
    assert found, text
    return found.group(0)


def undo_line(text: str) -> str:
    """The command printed after 'to undo it:'."""
    match = re.search(r"to undo it:\n  (kafka-backup offset-rollback rollback .*)\n", text)
    assert match, text
    return match.group(1)


class Member:
    """A consumer that has joined ``group`` (an active member) until closed."""

    def __init__(self, bootstrap: str, group: str, topic: str) -> None:
        self.consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
        self.consumer.subscribe([topic])
        deadline = time.monotonic() + 30
        while not self.consumer.assignment():
            assert time.monotonic() < deadline, "the consumer never joined its group"
            self.consumer.poll(0.2)

    def close(self) -> None:
        self.consumer.close()


# -- offset-rollback ---------------------------------------------------------------------------


def test_snapshot_list_show_verify_delete(restored: Restored, capsys: pytest.CaptureFixture[str]) -> None:
    bs, t = restored.bootstrap, restored.target
    one, two, none = restored.group("snap-1"), restored.group("snap-2"), restored.group("snap-none")
    commit(bs, one, {(t, 0): CommittedOffset(3, "meta-1"), (t, 1): 4})
    commit(bs, two, {(t, 1): 7})
    where = ["--path", restored.store, "--backup-id", "bk"]
    code, out, _ = run(
        capsys,
        *["offset-rollback", "snapshot", *where, "--groups", f"{one},{two},{none}"],
        *["--bootstrap-servers", bs, "--description", "before the drill"],
    )
    assert code == 0
    sid = snapshot_id(out)
    assert "Groups:      3" in out and "Offsets:     3" in out
    assert (
        f"kafka-backup offset-rollback rollback --path {restored.store} --backup-id bk --snapshot-id {sid}"
        in out
    )
    assert (Path(restored.store) / "bk" / "offset-snapshots" / f"{sid}.json").is_file()

    code, out, _ = run(capsys, "offset-rollback", "list", *where, "--format", "json")
    listed = {s["snapshot_id"]: s for s in json.loads(out)}
    assert code == 0 and listed[sid]["group_count"] == 3 and listed[sid]["offset_count"] == 3
    assert listed[sid]["description"] == "before the drill"
    code, out, _ = run(capsys, "offset-rollback", "list", *where)
    assert code == 0 and sid in out and "before the drill" in out

    code, out, _ = run(capsys, "offset-rollback", "show", *where, "--snapshot-id", sid, "--format", "json")
    shown = json.loads(out)
    assert shown["group_offsets"][one]["offsets"][t]["0"] == {
        "offset": 3,
        "metadata": "meta-1",
        "leader_epoch": None,
    }
    assert shown["group_offsets"][one]["partition_count"] == 2
    assert shown["group_offsets"][none] == {"group_id": none, "offsets": {}, "partition_count": 0}
    code, out, _ = run(capsys, "offset-rollback", "show", *where, "--snapshot-id", sid)
    assert code == 0 and f"{none}  -" in out and "(no committed offsets)" in out

    verify_args = ["offset-rollback", "verify", *where, "--snapshot-id", sid, "--bootstrap-servers", bs]
    code, out, _ = run(capsys, *verify_args)
    assert (code, out.strip()) == (0, f"VERIFIED: all offsets of 3 group(s) match snapshot {sid}")
    commit(bs, two, {(t, 1): 9, (t, 0): 1})
    code, out, err = run(capsys, *verify_args)
    assert code == 1
    assert out.splitlines() == [
        f"MISMATCH: 1 of 3 group(s) differ from snapshot {sid}",
        f"  - {two}:{t}:0 expected no offset but found 1",
        f"  - {two}:{t}:1 expected 7 but found 9",
    ]
    assert f"offsets do not match snapshot {sid}: 2 partition(s) differ" in err
    code, out, _ = run(capsys, *verify_args, "--format", "json")
    report = json.loads(out)
    assert (code, report["verified"], report["groups_mismatched"]) == (1, False, [two])
    assert {
        "group_id": two,
        "topic": t,
        "partition": 0,
        "expected_offset": None,
        "actual_offset": 1,
    } in report["mismatches"]

    code, out, _ = run(capsys, "offset-rollback", "delete", *where, "--snapshot-id", sid)
    assert code == 0 and f"Snapshot {sid} deleted" in out
    code, _, err = run(capsys, "offset-rollback", "show", *where, "--snapshot-id", sid)
    assert code == 1 and f"no offset snapshot '{sid}' of backup 'bk'" in err
    code, _, err = run(capsys, "offset-rollback", "delete", *where, "--snapshot-id", sid)
    assert code == 1 and "no offset snapshot" in err


def test_rollback_restores_the_exact_previous_offsets(
    restored: Restored, capsys: pytest.CaptureFixture[str]
) -> None:
    bs, t, s = restored.bootstrap, restored.target, restored.source
    app, late = restored.group("rb-app"), restored.group("rb-late")
    commit(bs, app, {(t, 0): CommittedOffset(7, "state-7"), (t, 1): 9})
    before = committed(bs, app)
    where = ["--path", restored.store, "--backup-id", "bk"]
    code, out, _ = run(
        capsys, "offset-rollback", "snapshot", *where, "--groups", f"{app},{late}", "--bootstrap-servers", bs
    )
    sid = snapshot_id(out)
    # Everything a mistaken reset could do: move offsets, drop metadata, add a partition, create a group.
    commit(bs, app, {(t, 0): 2, (t, 1): 19, (s, 1): 4})
    commit(bs, late, {(t, 0): 5})
    changed = {app: committed(bs, app), late: committed(bs, late)}

    code, out, err = run(
        capsys, "offset-rollback", "rollback", *where, "--snapshot-id", sid, "--bootstrap-servers", bs
    )
    assert code == 0, err
    assert committed(bs, app) == before  # offsets, metadata and the set of partitions
    assert committed(bs, late) == {}
    assert "Rollback SUCCESS: 2 group(s) rolled back, 0 failed, 2 offsets restored" in out
    assert f"offsets removed: {app}:{s}:1, {late}:{t}:0" in out
    assert f"VERIFIED: all offsets of 2 group(s) match snapshot {sid}" in out

    undo = undo_line(out)  # the rollback itself can be undone
    done = shell(undo)
    assert done.returncode == 0, done.stderr
    assert {app: committed(bs, app), late: committed(bs, late)} == changed

    code, out, _ = run(
        capsys,
        "offset-rollback",
        "rollback",
        *where,
        "--snapshot-id",
        sid,
        "--bootstrap-servers",
        bs,
        "--format",
        "json",
    )
    body = json.loads(out)
    assert code == 0 and body["result"]["status"] == "success" and body["verification"]["verified"]
    assert body["result"]["groups_deleted"] == [app, late] and body["undo_snapshot_id"] != sid
    assert committed(bs, app) == before


def test_rollback_refuses_a_group_with_active_members(
    restored: Restored, capsys: pytest.CaptureFixture[str]
) -> None:
    bs, t = restored.bootstrap, restored.target
    group = restored.group("rb-busy")
    commit(bs, group, {(t, 0): 3})
    where = ["--path", restored.store, "--backup-id", "bk"]
    _, out, _ = run(
        capsys, "offset-rollback", "snapshot", *where, "--groups", group, "--bootstrap-servers", bs
    )
    sid = snapshot_id(out)
    member = Member(bs, group, t)
    try:
        code, _, err = run(
            capsys, "offset-rollback", "rollback", *where, "--snapshot-id", sid, "--bootstrap-servers", bs
        )
        # Past the check (a consumer joining in between), Kafka's own refusal is what the user reads.
        refused = GroupAdmin(AdminClient({"bootstrap.servers": bs})).commit(
            group, {(t, 0): CommittedOffset(1)}
        )
    finally:
        member.close()
    assert describe_commit_error(refused[(t, 0)]) == (
        "Kafka refused: Broker: Unknown member (UNKNOWN_MEMBER_ID): the group has active members; "
        "stop its consumers, then run the command again"
    )
    assert code == 1
    assert f"consumer group(s) '{group}' (1 member) have active members" in err
    assert "Stop them, then run kafka-backup offset-rollback rollback; no offsets were changed" in err


# -- offset-reset execute, offset-reset-bulk, offset-reset script ---------------------------------------


def test_execute_needs_groups_snapshots_first_and_prints_a_working_undo(
    restored: Restored, capsys: pytest.CaptureFixture[str]
) -> None:
    bs, t, s = restored.bootstrap, restored.target, restored.source
    where = ["--path", restored.store, "--backup-id", "bk"]
    code, _, err = run(capsys, "offset-reset", "execute", *where, "--bootstrap-servers", bs)
    assert code == 1
    assert (
        "--groups: kafka-backup offset-reset execute changes consumer groups' offsets; name them with "
        "--groups G1,G2, or pass --all-groups for every group in the backup's snapshot"
    ) in err
    code, _, err = run(capsys, "offset-reset", "execute", *where, "--groups", "x", "--all-groups")
    assert code == 2 and "not allowed with argument" in err

    group = restored.group("exec")
    source_offsets = offsets_on(bs, group, s)
    code, out, err = run(
        capsys, "offset-reset", "execute", *where, "--groups", group, "--config", str(restored.restore_file)
    )
    assert code == 0, err
    assert offsets_on(bs, group, t) == {0: 5, 1: 10}  # 15 and 20 on the source, 10 records left out
    assert f"committed new offsets for 1 group(s): {group} (2 partitions)" in out
    undo = undo_line(out)
    assert undo.endswith(f"--config {restored.restore_file}")
    assert out.index("to undo it:") < out.index("committed new offsets")  # announced before the change

    done = shell(undo)
    assert done.returncode == 0, done.stderr
    assert offsets_on(bs, group, t) == {}  # the group had no offsets on the target topic before
    assert offsets_on(bs, group, s) == source_offsets


def test_restore_resetting_groups_snapshots_first_and_prints_a_working_undo(
    restored: Restored, capsys: pytest.CaptureFixture[str], kafka_service: KafkaEndpoint, tmp_path: Path
) -> None:
    """``restore`` with ``reset_consumer_offsets: true`` goes the way ``offset-reset execute`` goes."""
    bs, group = restored.bootstrap, restored.group("restore")
    target = f"{restored.prefix}-dst2"
    # A backup of its own: a second restore of "bk" would become the latest the other tests translate through.
    backup_job = yaml.safe_load(restored.backup_file.read_text())
    backup_job["backup_id"] = "bk-restore-reset"
    assert BackupEngine(parse_config(backup_job)).run().status == "complete"
    job = yaml.safe_load(restored.restore_file.read_text())
    job["backup_id"] = "bk-restore-reset"
    job["target"]["topics"]["include"] = [target]
    job["restore"].update(
        topic_mapping={restored.source: target}, reset_consumer_offsets=True, consumer_groups=[group]
    )
    job_file = tmp_path / "restore-reset.yaml"
    job_file.write_text(yaml.safe_dump(job))
    try:
        code, out, err = run(capsys, "restore", "--config", str(job_file))
        assert code == 0, err
        assert offsets_on(bs, group, target) == {0: 3, 1: 6}  # 13 and 16 on the source, 10 left out
        undo = undo_line(out)
        assert (
            f"--config {job_file}" in undo and f"--path {restored.store} --backup-id bk-restore-reset" in undo
        )
        stored = SnapshotStore(create_backend_from_config(parse_config(job).storage), "bk-restore-reset")
        assert snapshot_id(undo) in [s.snapshot_id for s in stored.list()]
        done = shell(undo)
        assert done.returncode == 0, done.stderr
        assert offsets_on(bs, group, target) == {}  # as before the restore
    finally:
        with contextlib.suppress(Exception):
            delete_kafka_topic(kafka_service, target)


def test_execute_refuses_a_group_with_active_members(
    restored: Restored, capsys: pytest.CaptureFixture[str]
) -> None:
    bs, t = restored.bootstrap, restored.target
    group = restored.group("busy")
    where = ["--path", restored.store, "--backup-id", "bk"]
    _, listed, _ = run(capsys, "offset-rollback", "list", *where, "--format", "json")
    member = Member(bs, group, t)
    try:
        code, _, err = run(
            capsys, "offset-reset", "execute", *where, "--groups", group, "--bootstrap-servers", bs
        )
    finally:
        member.close()
    assert code == 1
    assert f"consumer group(s) '{group}' (1 member) have active members: Kafka changes the offsets" in err
    assert offsets_on(bs, group, t) == {}
    _, after, _ = run(capsys, "offset-rollback", "list", *where, "--format", "json")
    assert json.loads(after) == json.loads(listed)  # refused before anything, even a snapshot


def test_bulk_reset_in_parallel_and_back(restored: Restored, capsys: pytest.CaptureFixture[str]) -> None:
    bs, t = restored.bootstrap, restored.target
    names = [restored.group(g) for g in ("bulk-a", "bulk-b", "bulk-c")]
    where = ["--path", restored.store, "--backup-id", "bk"]
    code, _, err = run(capsys, "offset-reset-bulk", *where, "--bootstrap-servers", bs)
    assert code == 1 and "name them with --groups G1,G2, or pass --all-groups" in err

    code, out, err = run(
        capsys,
        *["offset-reset-bulk", *where, "--groups", ",".join(names), "--bootstrap-servers", bs],
        *["--max-concurrent", "3", "--format", "json"],
    )
    assert code == 0, err
    report = json.loads(out)
    assert (report["status"], report["total_groups"], report["successful_groups"]) == ("success", 3, 3)
    assert (report["total_offsets_reset"], report["total_offsets_failed"]) == (4, 0)
    assert report["performance"]["max_concurrency"] == 3
    assert [offsets_on(bs, g, t) for g in names] == [{0: 2}, {1: 20}, {0: 0, 1: 1}]
    assert "to undo it:" in err  # with --format json the announcement goes to stderr

    code, out, err = run(
        capsys,
        *["offset-rollback", "rollback", *where, "--snapshot-id", report["rollback_snapshot_id"]],
        *["--bootstrap-servers", bs],
    )
    assert code == 0, err
    assert [offsets_on(bs, g, t) for g in names] == [{}, {}, {}]


def test_generated_script_runs_with_kafka_consumer_groups_sh(
    restored: Restored, capsys: pytest.CaptureFixture[str], kafka_consumer_groups_sh: Path, tmp_path: Path
) -> None:
    bs, t = restored.bootstrap, restored.target
    group = restored.group("script")
    where = ["--path", restored.store, "--backup-id", "bk"]
    code, _, err = run(capsys, "offset-reset", "script", *where, "--groups", group)
    assert code == 1 and "needs the Kafka cluster: --bootstrap-servers HOST:PORT, or --config" in err

    script = tmp_path / "reset.sh"
    args = [*where, "--groups", group, "--bootstrap-servers", bs]
    code, out, err = run(capsys, "offset-reset", "script", *args, "--output", str(script))
    assert code == 0, err
    assert out.strip() == f"Script written to: {script} (2 offsets)"
    text = script.read_text()
    assert os.access(script, os.X_OK)
    assert f"kafka-backup offset-rollback snapshot {shlex.join([*where, '--groups', group])}" in text
    assert "--reset-offsets --to-offset 15 --execute" in text and f"--topic {t}:0" in text
    code, planned, _ = run(capsys, "offset-reset", "plan", *args, "--format", "shell-script")
    assert code == 0 and planned.splitlines()[4:] == text.splitlines()[4:]  # the same, bar the time

    done = subprocess.run(
        [str(script)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "KAFKA_CONSUMER_GROUPS": str(kafka_consumer_groups_sh)},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().endswith("Offset reset complete!")
    assert offsets_on(bs, group, t) == {0: 15, 1: 4}  # 25 and 14 on the source


def test_plan_csv(restored: Restored, capsys: pytest.CaptureFixture[str]) -> None:
    group = restored.group("bulk-c")
    code, out, _ = run(
        capsys,
        "offset-reset",
        "plan",
        "--path",
        restored.store,
        "--backup-id",
        "bk",
        "--groups",
        group,
        "--format",
        "csv",
        "--dry-run",
    )
    assert code == 0
    assert out.splitlines() == [
        "group_id,topic,partition,source_offset,target_offset,source_topic,source_partition",
        f"{group},{restored.target},0,10,0,{restored.source},0",
        f"{group},{restored.target},1,11,1,{restored.source},1",
    ]


# -- snapshot-groups --------------------------------------------------------------------------------


def test_snapshot_groups_stores_the_groups_a_restore_translates(
    restored: Restored, capsys: pytest.CaptureFixture[str]
) -> None:
    bs, s = restored.bootstrap, restored.source
    late = restored.group("late")
    commit(bs, late, {(s, 0): 21})
    code, out, err = run(capsys, "snapshot-groups", "--config", str(restored.backup_file))
    assert code == 0, err
    assert re.search(
        r"consumer-group snapshot of backup bk: \d+ group\(s\), \d+ offsets on 1 backed-up topic", out
    )
    assert f"  {late}: {s}[0]=21" in out
    stored = json.loads((Path(restored.store) / "bk" / "consumer-groups.json").read_text())
    assert stored["groups"][late] == {s: {"0": 21}}
    code, out, _ = run(
        capsys,
        "offset-reset",
        "plan",
        "--path",
        restored.store,
        "--backup-id",
        "bk",
        "--groups",
        late,
        "--format",
        "json",
    )
    assert code == 0 and [r["target_offset"] for r in json.loads(out)] == [11]

    code, _, err = run(capsys, "snapshot-groups", "--config", str(restored.restore_file))
    assert code == 1 and "snapshot-groups needs a backup job file (mode: backup)" in err


# -- bad input ------------------------------------------------------------------------------------------


def test_bad_input_messages(restored: Restored, capsys: pytest.CaptureFixture[str]) -> None:
    bs = restored.bootstrap
    where = ["--path", restored.store, "--backup-id", "bk"]
    code, _, err = run(capsys, "offset-rollback", "list", "--path", restored.store, "--backup-id", "nope")
    assert code == 1 and "no backup 'nope'" in err and "backups there: bk" in err
    code, _, err = run(capsys, "offset-rollback", "show", *where, "--snapshot-id", "../manifest")
    assert code == 1 and "--snapshot-id: '../manifest' is not a snapshot id" in err
    code, _, err = run(capsys, "offset-rollback", "snapshot", *where, "--bootstrap-servers", bs)
    assert code == 1 and "name the groups to snapshot with --groups G1,G2, or pass --all-groups" in err
    code, _, err = run(capsys, "offset-rollback", "snapshot", *where, "--groups", " , ")
    assert code == 1 and "--groups: names no consumer group" in err
    code, out, _ = run(
        capsys, "offset-rollback", "snapshot", *where, "--groups", "g", "--bootstrap-servers", bs
    )
    sid = snapshot_id(out)
    wrong = sid[:-1] + ("0" if sid[-1] != "0" else "1")
    code, _, err = run(capsys, "offset-rollback", "show", *where, "--snapshot-id", wrong)
    assert code == 1 and f"did you mean '{sid}'?" in err
    code, _, err = run(capsys, "offset-rollback", "rollback", *where, "--snapshot-id", sid)
    assert code == 1 and "offset-rollback rollback needs the Kafka cluster" in err
    code, _, err = run(capsys, "offset-rollback", "rollback", *where)
    assert code == 2 and "--snapshot-id" in err
    code, _, err = run(
        capsys,
        "offset-reset-bulk",
        *where,
        "--all-groups",
        "--max-concurrent",
        "0",
        "--bootstrap-servers",
        bs,
    )
    assert code == 1 and "--max-concurrent: must be at least 1" in err


def test_snapshots_in_s3_storage(kafka_service: KafkaEndpoint, minio_bucket: S3Bucket) -> None:
    """Snapshots go through libkb's StorageBackend: the same round trip with the store on MinIO."""
    bs = kafka_service.bootstrap_servers
    group = f"t-offsets-s3-{uuid.uuid4().hex[:10]}"
    topic = f"{group}-topic"
    create_kafka_topic(kafka_service, topic, partitions=1)
    try:
        commit(bs, group, {(topic, 0): CommittedOffset(4, "m")})
        admin = AdminClient({"bootstrap.servers": bs})
        cluster = Cluster(GroupAdmin(admin), [bs], None)
        with create_backend_from_config(s3_config(minio_bucket, prefix="offsets")) as backend:
            store = SnapshotStore(backend, "bk")
            snapshot = take_snapshot(cluster, store, [group])
            assert store.ids() == [snapshot.snapshot_id]
            assert backend.list("bk/") == [f"bk/offset-snapshots/{snapshot.snapshot_id}.json"]
            commit(bs, group, {(topic, 0): 9})
            assert not verify(cluster.admin, store.load(snapshot.snapshot_id)).verified
            undo, result = rollback(cluster, store, store.load(snapshot.snapshot_id), command="test")
            assert result.status == "success" and verify(cluster.admin, snapshot).verified
            assert committed(bs, group) == {(topic, 0): CommittedOffset(4, "m")}
            assert [s.snapshot_id for s in store.list()] == [undo.snapshot_id, snapshot.snapshot_id]
            store.delete(undo.snapshot_id)
            assert store.ids() == [snapshot.snapshot_id]
    finally:
        delete_kafka_topic(kafka_service, topic)
