"""The job file's ``logging`` block: level and format (JSON lines), secrets masked, flags win."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import pytest

from libkb.cli import main
from libkb.cli.jobfile import load_job
from libkb.cli.logs import configure, error_line

PASSWORD = "pw-Zq9-never-print-me"
SECRET = "s3-Xy7-never-print-me"


def job_file(tmp_path: Path, logging_block: str) -> Path:
    path = tmp_path / "restore.yaml"
    path.write_text(
        "mode: restore\nbackup_id: nightly\n"
        "target:\n  bootstrap_servers: ['127.0.0.1:9']\n"
        f"  security: {{security_protocol: SASL_SSL, sasl_mechanism: PLAIN, sasl_username: u, "
        f"sasl_password: {PASSWORD}}}\n"
        f"storage:\n  backend: s3\n  bucket: b\n  access_key: k\n  secret_key: {SECRET}\n"
        "restore:\n  checkpoint_interval_secs: 60\n" + logging_block,
        encoding="utf-8",
    )
    return path


def lines(stream: io.StringIO) -> list[str]:
    return [line for line in stream.getvalue().splitlines() if line]


def test_json_format_writes_one_object_per_line(tmp_path: Path) -> None:
    stream = io.StringIO()
    configure(0, stream=stream)
    path = job_file(tmp_path, "logging:\n  format: json\n")
    load_job(str(path))
    logging.getLogger("libkb.restore").info("connecting with %s and %s", PASSWORD, SECRET)
    try:
        raise RuntimeError(f"refused: {PASSWORD}")
    except RuntimeError:
        logging.getLogger("libkb.cli").exception("it failed")
    warning, info, failure = (json.loads(line) for line in lines(stream))
    assert warning == {
        "time": warning["time"],
        "level": "WARNING",
        "logger": "libkb.config",
        "message": f"{path}: restore.checkpoint_interval_secs: not used: libkb keeps a restore's progress "
        "in the backup storage ({backup_id}/restores/) and a re-run resumes it without duplicates",
        "backup_id": "nightly",
    }
    assert warning["time"].endswith("Z") and "T" in warning["time"]
    assert info["message"] == "connecting with *** and ***"
    assert (info["level"], info["logger"], info["backup_id"]) == ("INFO", "libkb.restore", "nightly")
    assert failure["message"] == "it failed" and "RuntimeError: refused: ***" in failure["exception"]
    assert PASSWORD not in stream.getvalue() and SECRET not in stream.getvalue()


def test_text_format_masks_secrets_too(tmp_path: Path) -> None:
    stream = io.StringIO()
    configure(0, stream=stream)
    load_job(str(job_file(tmp_path, "logging:\n  level: info\n  format: text\n")))
    logging.getLogger("libkb.restore").info("password=%s", PASSWORD)
    error_line(f"could not log in with {PASSWORD}", stream)
    text = stream.getvalue()
    assert "INFO    libkb.restore: password=***" in text
    assert "kafka-backup: error: could not log in with ***" in text
    assert PASSWORD not in text


@pytest.mark.parametrize(
    ("verbosity", "flag", "file_level", "libkb", "root"),
    [
        (0, None, "warn", logging.WARNING, logging.CRITICAL),  # no flag: the file decides
        (0, None, "error", logging.ERROR, logging.CRITICAL),  # third parties silent (one error line)
        (0, None, "trace", logging.DEBUG, logging.DEBUG),  # everyone's debug, as -vv
        (1, None, "error", logging.DEBUG, logging.WARNING),  # -v wins
        (2, None, "error", logging.DEBUG, logging.DEBUG),  # -vv wins
        (0, "critical", "debug", logging.CRITICAL, logging.CRITICAL),  # --log-level wins
    ],
)
def test_command_line_flags_win_over_the_files_level(
    tmp_path: Path, verbosity: int, flag: str | None, file_level: str, libkb: int, root: int
) -> None:
    configure(verbosity, flag, stream=io.StringIO())
    load_job(str(job_file(tmp_path, f"logging:\n  level: {file_level}\n")))
    assert logging.getLogger("libkb").level == libkb
    assert logging.getLogger().level == root


def test_the_command_logs_the_files_warnings_as_json(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "restore.yaml"
    path.write_text(
        "mode: restore\nbackup_id: nothing-here\ntarget: {bootstrap_servers: ['127.0.0.1:9']}\n"
        f"storage: {{backend: filesystem, path: {tmp_path / 'store'}}}\n"
        "restore: {consumer_group_strategy: header-based}\nlogging: {format: json}\n",
        encoding="utf-8",
    )
    assert main(["validate-restore", "--config", str(path)]) == 1
    first, *_rest, last = capsys.readouterr().err.splitlines()
    entry = json.loads(first)
    assert entry["message"].startswith(f"{path}: restore.consumer_group_strategy: not used: ")
    assert entry["backup_id"] == "nothing-here"
    error = json.loads(last)  # the final error line is a JSON object too
    assert (error["level"], error["logger"], error["backup_id"]) == ("ERROR", "kafka-backup", "nothing-here")
    assert error["message"].startswith("nothing is stored at ")


def test_the_log_format_flag_writes_json_lines_and_wins_over_the_job_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = job_file(tmp_path, "logging:\n  format: text\n")
    assert main(["validate-restore", "--log-format", "json", "--config", str(path)]) == 1
    entries = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert entries and all(e["backup_id"] == "nightly" for e in entries)
    assert {"time", "level", "logger", "message"} <= set(entries[-1])
    text = json.dumps(entries)
    assert PASSWORD not in text and SECRET not in text
    path = job_file(tmp_path, "logging:\n  format: json\n")
    assert main(["--log-format", "text", "validate-restore", "--config", str(path)]) == 1
    assert capsys.readouterr().err.splitlines()[-1].startswith("kafka-backup: error: ")


def test_extra_fields_are_keys_of_the_json_line_and_masked(tmp_path: Path) -> None:
    stream = io.StringIO()
    configure(0, stream=stream, fmt="json")
    load_job(str(job_file(tmp_path, "")))
    logging.getLogger("libkb.backup").info(
        "segment stored",
        extra={"topic": "orders", "partition": 3, "records": 500, "url": f"s3://k:{SECRET}@b"},
    )
    entry = json.loads(lines(stream)[-1])
    assert (entry["topic"], entry["partition"], entry["records"]) == ("orders", 3, 500)
    assert entry["url"] == "s3://k:***@b" and entry["message"] == "segment stored"
