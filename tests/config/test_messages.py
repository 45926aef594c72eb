"""Every config error names the file, the key path and what to give (never marshmallow's own words)."""

from __future__ import annotations

from pathlib import Path

import pytest

from libkb.cli.app import main
from libkb.cli.jobfile import load_job
from libkb.errors import ConfigError

BASE = (
    "mode: backup\nbackup_id: b\nsource:\n  bootstrap_servers: ['h:1']\n  topics:\n    include: [t]\n"
    "storage:\n  backend: filesystem\n  path: /x\n"
)

CASES = {
    "required": (BASE.replace("backend: filesystem\n  path: /x", "backend: s3"), "storage.bucket: required"),
    "string": (BASE.replace("path: /x", "path: [1, 2]"), "storage.path: must be text"),
    "int": (
        BASE + "backup:\n  segment_max_bytes: lots\n",
        "backup.segment_max_bytes: must be a whole number",
    ),
    "bool": (
        BASE + "backup:\n  include_offset_headers: perhaps\n",
        "include_offset_headers: must be true or false",
    ),
    "list": (BASE.replace("include: [t]", "include: {a: 1}"), "source.topics.include: must be a list"),
    "mapping": (
        BASE.replace("  topics:\n    include: [t]\n", "  topics: 7\n"),
        "source.topics: must be a mapping",
    ),
    "range": (
        BASE + "backup:\n  segment_max_bytes: -5\n",
        "segment_max_bytes: must be greater than or equal to",
    ),
    "one-of": (BASE + "backup:\n  compression: rar\n", "backup.compression: must be one of: zstd, lz4, none"),
    "outage-deadline": (
        BASE + "backup:\n  storage_outage_timeout_secs: -1\n",
        "backup.storage_outage_timeout_secs: must be greater than or equal to 0",
    ),
}


@pytest.mark.parametrize("kind", sorted(CASES))
def test_a_bad_value_names_the_file_the_key_and_what_to_give(kind: str, tmp_path: Path) -> None:
    text, expected = CASES[kind]
    path = tmp_path / "job.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_job(str(path))
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and expected in message, message
    for words in ("Missing data", "Not a valid", "Must be", "Invalid input", "Field may not"):
        assert words not in message


def test_backup_of_a_restore_file_names_the_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from libkb.cli.logs import unconfigure

    path = tmp_path / "restore.yaml"
    path.write_text(
        "mode: restore\nbackup_id: b\ntarget:\n  bootstrap_servers: ['h:1']\n"
        "storage:\n  backend: filesystem\n  path: /x\n"
    )
    try:
        assert main(["backup", "--config", str(path)]) == 1
    finally:
        unconfigure()
    err = capsys.readouterr().err
    assert (
        err
        == f"kafka-backup: error: {path}: mode: mode is 'restore'; use kafka-backup restore for this file\n"
    )


def test_the_storage_outage_deadline_is_a_backup_and_a_restore_key(tmp_path: Path) -> None:
    backup = tmp_path / "backup.yaml"
    backup.write_text(BASE + "backup:\n  storage_outage_timeout_secs: 120\n")
    assert load_job(str(backup)).backup.storage_outage_timeout_secs == 120
    restore = tmp_path / "restore.yaml"
    restore.write_text(
        "mode: restore\nbackup_id: b\ntarget:\n  bootstrap_servers: ['h:1']\n"
        "storage:\n  backend: filesystem\n  path: /x\nrestore:\n  storage_outage_timeout_secs: 0\n"
    )
    assert (
        load_job(str(restore)).restore.storage_outage_timeout_secs == 0
    )  # 0: fail after the backend's retries
    assert (
        load_job(str(backup)).restore.storage_outage_timeout_secs == 900
    )  # the default rides through minutes
