"""kafka-backup's argument handling, exit statuses and outputs (list, describe, validate, backup config)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from libkb.backup.engine import BackupResult
from libkb.cli import main
from libkb.cli.backup import exit_status
from libkb.format.models import segment_key
from libkb.storage import StorageBackend
from tests.cli.stored import flip_byte, write_backup

Store = tuple[str, StorageBackend]
KAFKA_BACKUP = Path(sys.executable).with_name("kafka-backup")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["frobnicate"],
        ["list"],
        ["describe", "--path", "x"],
        ["validate", "--path", "x", "--backup-id", "b", "--format", "yaml"],
        ["list", "--path", "x", "--format", "xml"],
        ["backup"],
        ["--log-level", "loud", "list", "--path", "x"],
    ],
)
def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    code, _out, err = run(capsys, *argv)
    assert code == 2
    assert "usage: kafka-backup" in err


def test_help_and_version_exit_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "--help")[0] == 0
    code, out, _ = run(capsys, "--version")
    assert code == 0 and "libkb" in out


def test_bad_config_exits_1_naming_the_key(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    config = tmp_path / "job.yaml"
    config.write_text(
        "backup_id: b1\nsource:\n  bootstrap_servers: [127.0.0.1:9092]\n"
        f"storage:\n  backend: filesystem\n  path: {tmp_path}\nbackup:\n  segment_max_byte: 10\n"
    )
    code, _out, err = run(capsys, "backup", "--config", str(config))
    assert code == 1
    assert err.count("\n") == 1 and "backup.segment_max_byte" in err and str(config) in err
    assert "Traceback" not in err


def test_missing_config_file_exits_1(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "backup", "--config", str(tmp_path / "nope.yaml"))
    assert code == 1 and "no such config file" in err


def test_list_text_json_yaml(capsys: pytest.CaptureFixture[str], store: Store) -> None:
    path, backend = store
    write_backup(backend, "b1")
    write_backup(backend, "b2", {"solo": 1})
    code, out, _ = run(capsys, "list", "--path", path)
    assert code == 0 and "BACKUP ID" in out and "b1" in out and "b2" in out
    code, out, _ = run(capsys, "list", "--path", path, "--format", "json")
    assert code == 0
    assert [b["backup_id"] for b in json.loads(out)] == ["b1", "b2"]
    code, out, _ = run(capsys, "list", "--path", f"file://{path}", "--format", "yaml", "--backup-id", "b2")
    body = yaml.safe_load(out)
    assert code == 0 and [b["backup_id"] for b in body] == ["b2"] and body[0]["topics"] == ["solo"]


def test_list_of_an_empty_location(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = run(capsys, "list", "--path", "memory://")
    assert code == 0 and "no backups at memory://" in out
    assert run(capsys, "list", "--path", str(tmp_path), "--format", "json")[1].strip() == "[]"
    assert (
        run(capsys, "list", "--path", str(tmp_path / "new"), "--format", "json")[0] == 1
    )  # missing: an error


def test_list_with_an_unsupported_url_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "list", "--path", "ftp://host/dir")
    assert code == 1 and "unsupported URL scheme 'ftp'" in err


def test_describe_outputs(capsys: pytest.CaptureFixture[str], store: Store) -> None:
    path, backend = store
    write_backup(backend, "b1")
    code, out, _ = run(capsys, "describe", "--path", path, "--backup-id", "b1")
    assert code == 0
    assert (
        "Backup:          b1" in out
        and "orders" in out
        and "[0, 32)" in out
        and "billing: orders[0]=7" in out
    )
    for fmt, load in (("json", json.loads), ("yaml", yaml.safe_load)):
        code, out, _ = run(capsys, "describe", "--path", path, "--backup-id", "b1", "--format", fmt)
        body = load(out)
        assert code == 0 and body["backup_id"] == "b1" and body["records"] == 60
        assert {(p["topic"], p["partition"]) for p in body["partitions"]} == {
            ("events", 0),
            ("orders", 0),
            ("orders", 1),
        }


def test_describe_unknown_id_is_one_error_line(capsys: pytest.CaptureFixture[str], store: Store) -> None:
    path, backend = store
    write_backup(backend, "b1")
    code, out, err = run(capsys, "describe", "--path", path, "--backup-id", "nope")
    assert code == 1 and out == ""
    assert err.startswith("kafka-backup: error: no backup 'nope'") and "b1" in err and err.count("\n") == 1


def test_validate_ok_and_deep_failure(capsys: pytest.CaptureFixture[str], store: Store) -> None:
    path, backend = store
    write_backup(backend, "b1")
    code, out, _ = run(capsys, "validate", "--path", path, "--backup-id", "b1", "--deep")
    assert code == 0 and "valid (deep check: 3 partitions, 6 segments, 60 records)" in out
    key = segment_key("b1", "orders", 0, 10)
    flip_byte(backend, key)
    assert run(capsys, "validate", "--path", path, "--backup-id", "b1")[0] == 0
    code, out, err = run(capsys, "validate", "--path", path, "--backup-id", "b1", "--deep")
    assert code == 1 and f"problem: {key}" in out and "not valid: 1 problem" in err
    code, out, _ = run(capsys, "validate", "--path", path, "--backup-id", "b1", "--deep", "--format", "json")
    body = json.loads(out)
    assert code == 1 and body["ok"] is False and body["problems"][0].startswith(key)


def test_verbosity_options_after_the_command(capsys: pytest.CaptureFixture[str], store: Store) -> None:
    path, backend = store
    write_backup(backend, "b1")
    assert run(capsys, "list", "--path", path, "-vv")[0] == 0
    assert run(capsys, "-v", "list", "--log-level", "debug", "--path", path)[0] == 0


def test_installed_script_and_module_entry_points(store: Store) -> None:
    path, backend = store
    write_backup(backend, "b1")
    for cmd in ([str(KAFKA_BACKUP)], [sys.executable, "-m", "libkb.cli"]):
        done = subprocess.run(
            [*cmd, "list", "--path", path, "--format", "json"], capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)[0]["backup_id"] == "b1"
    done = subprocess.run([str(KAFKA_BACKUP), "list"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2


@pytest.mark.parametrize(
    ("status", "code"), [("complete", 0), ("stopped", 0), ("interrupted", 1), ("failed", 1)]
)
def test_backup_exit_status(status: str, code: int, capsys: pytest.CaptureFixture[str]) -> None:
    assert exit_status(BackupResult("b1", "r1", status)) == code
    if code:
        assert "b1" in capsys.readouterr().err


def test_error_lines_and_exit_statuses_come_from_one_place() -> None:
    from confluent_kafka import KafkaError, KafkaException

    from libkb.cli.exits import describe_error, error_status
    from libkb.kafka.errors import from_kafka

    error = from_kafka(
        KafkaException(KafkaError(KafkaError._TRANSPORT, "Failed to get metadata: broker down"))
    )
    assert describe_error(error) == "Kafka: Failed to get metadata: broker down"
    assert (error_status(error), error_status(KeyboardInterrupt())) == (1, 130)
    assert describe_error(KeyboardInterrupt()) == "interrupted"
    assert describe_error(PermissionError(13, "Permission denied", "/x")) == "Permission denied (/x)"
    assert (
        describe_error(RuntimeError("boom"))
        == "unexpected RuntimeError: boom (run with -vv for the traceback)"
    )


def test_dash_capital_v_prints_the_version(capsys: pytest.CaptureFixture[str]) -> None:
    from libkb.version import __version__

    assert main(["-V"]) == 0
    assert capsys.readouterr().out.strip() == f"kafka-backup (libkb) {__version__}"


def test_the_shell_completes_commands_and_options(tmp_path: Path) -> None:
    out = tmp_path / "completions"
    line = "kafka-backup ba"
    env = {
        **os.environ,
        "_ARGCOMPLETE": "1",
        "_ARGCOMPLETE_IFS": "\n",
        "COMP_LINE": line,
        "COMP_POINT": str(len(line)),
        "_ARGCOMPLETE_STDOUT_FILENAME": str(out),
    }
    subprocess.run([sys.executable, "-m", "libkb.cli"], env=env, check=True, timeout=60)
    assert [c.strip() for c in out.read_text().split("\n")] == ["backup"]
    line = "kafka-backup backup --con"
    env.update(COMP_LINE=line, COMP_POINT=str(len(line)))
    subprocess.run([sys.executable, "-m", "libkb.cli"], env=env, check=True, timeout=60)
    assert "--config" in [c.strip() for c in out.read_text().split("\n")]
