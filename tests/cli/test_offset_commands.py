"""The consumer-group offset commands without a broker: arguments, snapshots on disk, the script's quoting."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from libkb.cli import main
from libkb.cli.offset_common import (
    Target,
    parse_groups,
    require_groups,
    rollback_command,
    same_cluster,
    target,
)
from libkb.cli.offset_script import reset_script
from libkb.config import SourceOptions
from libkb.errors import ConfigError
from libkb.kafka.types import CommittedOffset
from libkb.offsets import Cluster, OffsetSnapshot, SnapshotStore
from libkb.restore.groups import TranslatedOffset
from libkb.storage import StorageBackend
from tests.cli.stored import write_backup

Store = tuple[str, StorageBackend]
SID = "snap-1700000000000-0000abcd"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    "argv",
    [
        ["offset-rollback"],
        ["offset-rollback", "undo", "--path", "x", "--backup-id", "b"],
        ["offset-rollback", "show", "--path", "x", "--backup-id", "b"],
        ["offset-rollback", "list", "--path", "x", "--backup-id", "b", "--format", "csv"],
        ["offset-reset", "execute", "--path", "x", "--backup-id", "b", "--groups", "a", "--all-groups"],
        ["offset-reset", "rewind", "--path", "x", "--backup-id", "b"],
        ["offset-reset-bulk", "--path", "x", "--backup-id", "b", "--max-concurrent", "many"],
        ["snapshot-groups"],
    ],
)
def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    code, _, err = run(capsys, *argv)
    assert code == 2 and "usage: kafka-backup" in err


def test_groups_are_named_never_all_by_default() -> None:
    assert parse_groups(None) is None
    assert parse_groups(" a, b ,a,") == ["a", "b"]
    with pytest.raises(ConfigError, match="--groups: names no consumer group"):
        parse_groups(",")
    require_groups(["a"], False, "offset-reset execute", "x")
    require_groups(None, True, "offset-reset execute", "x")
    with pytest.raises(
        ConfigError, match="name them with --groups G1,G2, or pass --all-groups for every group"
    ):
        require_groups(None, False, "offset-reset execute", "every group")


def test_the_cluster_comes_from_the_servers_or_a_job_file(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match="offset-rollback verify needs the Kafka cluster: --bootstrap-servers"
    ):
        target(None, None, "offset-rollback verify")
    assert target("a:1, b:2", None, "x").options.bootstrap_servers == ("a:1", "b:2")
    job = tmp_path / "restore.yaml"
    job.write_text(
        yaml.safe_dump(
            {
                "mode": "restore",
                "backup_id": "b",
                "target": {"bootstrap_servers": ["t:9092"], "security": {"security_protocol": "SSL"}},
                "storage": {"backend": "memory"},
            }
        )
    )
    from_job = target(None, str(job), "x")
    assert from_job.options.bootstrap_servers == ("t:9092",)
    assert from_job.options.security.security_protocol == "SSL"
    overridden = target("o:1", str(job), "x")
    assert overridden.options.bootstrap_servers == ("o:1",)
    assert overridden.options.security.security_protocol == "SSL"
    assert overridden.args() == ["--bootstrap-servers", "o:1", "--config", str(job)]


def test_the_undo_command_is_quoted_for_the_shell() -> None:
    named = Target(SourceOptions(bootstrap_servers=("h:1",)), "h:1", "my jobs/restore.yaml")
    assert rollback_command("/var/backups/it's here", "bk", SID, named) == (
        "kafka-backup offset-rollback rollback --path '/var/backups/it'\"'\"'s here' --backup-id bk "
        f"--snapshot-id {SID} --bootstrap-servers h:1 --config 'my jobs/restore.yaml'"
    )


def test_a_snapshot_is_only_used_on_its_own_cluster() -> None:
    snapshot = OffsetSnapshot(SID, "bk", 1, {}, ["old:9092"], cluster_id="AAA")
    named = Target(SourceOptions(bootstrap_servers=("new:9092",)), "new:9092", None)
    same_cluster(snapshot, Cluster(None, ["new:9092"], "AAA"), named)  # type: ignore[arg-type]
    same_cluster(snapshot, Cluster(None, ["new:9092"], None), named)  # type: ignore[arg-type]
    with pytest.raises(
        ConfigError, match="taken on Kafka cluster AAA \\(old:9092\\), but new:9092 is cluster BBB"
    ):
        same_cluster(snapshot, Cluster(None, ["new:9092"], "BBB"), named)  # type: ignore[arg-type]


def test_list_show_delete_read_the_store(capsys: pytest.CaptureFixture[str], store: Store) -> None:
    path, backend = store
    write_backup(backend, "b1")
    where = ["--path", path, "--backup-id", "b1"]
    assert run(capsys, "offset-rollback", "list", *where)[1] == "No offset snapshots of backup b1.\n"
    groups = {"g": {("t", 0): CommittedOffset(3, "m")}, "idle": {}}
    SnapshotStore(backend, "b1").save(
        OffsetSnapshot(SID, "b1", 1_700_000_000_000, groups, ["k:9092"], "C1", "why")
    )
    code, out, _ = run(capsys, "offset-rollback", "list", *where, "--format", "yaml")
    assert code == 0
    assert yaml.safe_load(out) == [
        {
            "snapshot_id": SID,
            "created_at": "2023-11-14T22:13:20.000Z",
            "group_count": 2,
            "offset_count": 1,
            "restore_id": None,
            "description": "why",
            "backup_id": "b1",
            "key": f"b1/offset-snapshots/{SID}.json",
        }
    ]
    code, out, _ = run(capsys, "offset-rollback", "show", *where, "--snapshot-id", SID)
    assert code == 0
    assert "  Cluster:     C1 (k:9092)" in out and "  g      t      0          3       m" in out
    assert "  idle   -      -          -       (no committed offsets)" in out
    code, out, _ = run(capsys, "offset-rollback", "show", *where, "--snapshot-id", SID, "--format", "json")
    assert json.loads(out)["group_offsets"]["g"]["offsets"]["t"]["0"]["metadata"] == "m"
    code, out, _ = run(capsys, "offset-rollback", "delete", *where, "--snapshot-id", SID)
    assert code == 0 and not backend.exists(f"b1/offset-snapshots/{SID}.json")
    code, _, err = run(capsys, "offset-rollback", "list", "--path", path, "--backup-id", "b9")
    assert code == 1 and "no backup 'b9'" in err


# -- the script ------------------------------------------------------------------------------------

WEIRD = 'it\'s a "group" $(touch pwned)\nrm -rf x; `x`'


def offsets() -> list[TranslatedOffset]:
    return [
        TranslatedOffset(WEIRD, "orders", 1, 40, "orders-copy", 1, 30),
        TranslatedOffset("billing", "orders", 0, 17, "orders-copy", 0, 7),
        TranslatedOffset(WEIRD, "orders", 0, 12, "orders-copy", 0, 2),
    ]


def script_text(snapshot_command: str = "kafka-backup offset-rollback snapshot --groups x") -> str:
    return reset_script(
        offsets(),
        bootstrap_servers="h1:9092,h2:9092",
        backup_id="bk",
        restore_id="r-1",
        snapshot_command=snapshot_command,
        generated="2024-01-01T00:00:00.000Z",
        version="9.9",
    )


def test_script_layout() -> None:
    text = script_text()
    assert text.startswith(
        "#!/usr/bin/env bash\n# Offset Reset Script\n# Generated at: 2024-01-01T00:00:00.000Z"
    )
    assert "set -euo pipefail\n" in text and "BOOTSTRAP_SERVERS=h1:9092,h2:9092\n" in text
    assert "# Consumer Group: billing\n# Partitions to reset: 1\n\n# Topic: orders-copy\n" in text
    assert "# Partition 0: source orders[0] offset 17 -> target offset 7\n" in text
    assert text.index("billing") < text.index("Consumer Group: it's")  # groups in order, then partitions
    assert text.endswith('echo "Offset reset complete!"\n')


def test_script_passes_every_name_verbatim_and_runs_nothing_else(tmp_path: Path) -> None:
    script = tmp_path / "reset.sh"
    script.write_text(script_text("kafka-backup offset-rollback snapshot --groups 'a\nb'"))
    recorder = tmp_path / "kafka-consumer-groups.sh"
    calls = tmp_path / "calls"
    # Each call: its arguments, each ended by a NUL, then a record separator (a name may hold a newline).
    recorder.write_text(f"#!/bin/sh\nprintf '%s\\0' \"$@\" >> {calls}\nprintf '\\036' >> {calls}\n")
    recorder.chmod(0o755)
    env = {**os.environ, "KAFKA_CONSUMER_GROUPS": str(recorder)}
    done = subprocess.run(
        ["bash", str(script)], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "Offset reset complete!\n"
    assert not (tmp_path / "pwned").exists()
    runs = [record.split("\0")[:-1] for record in calls.read_text().split("\036")[:-1]]
    common = ["--bootstrap-server", "h1:9092,h2:9092"]
    assert runs == [
        [
            *common,
            "--group",
            "billing",
            "--topic",
            "orders-copy:0",
            "--reset-offsets",
            "--to-offset",
            "7",
            "--execute",
        ],
        [
            *common,
            "--group",
            WEIRD,
            "--topic",
            "orders-copy:0",
            "--reset-offsets",
            "--to-offset",
            "2",
            "--execute",
        ],
        [
            *common,
            "--group",
            WEIRD,
            "--topic",
            "orders-copy:1",
            "--reset-offsets",
            "--to-offset",
            "30",
            "--execute",
        ],
    ]
    env["KAFKA_COMMAND_CONFIG"] = "/etc/kafka/client.properties"
    calls.unlink()
    subprocess.run(["bash", str(script)], check=True, capture_output=True, env=env, timeout=60)
    first = calls.read_text().split("\036")[0].split("\0")
    assert first[2:4] == ["--command-config", "/etc/kafka/client.properties"]
