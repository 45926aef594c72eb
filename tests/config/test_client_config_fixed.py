"""``client_config`` tunes libkb's clients; one that changes what they need is refused when the file loads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from libkb.cli.app import main
from libkb.cli.jobfile import load_job
from libkb.config import RestoreOptions, SourceOptions
from libkb.errors import ConfigError
from libkb.kafka.clients import client_settings
from libkb.restore.producer import producer_config

BACKUP = (
    "mode: backup\nbackup_id: b\nsource:\n  bootstrap_servers: ['h:1']\n  topics:\n    include: [t]\n"
    "  client_config:\n{cc}storage:\n  backend: filesystem\n  path: {path}\n"
)
RESTORE = (
    "mode: restore\nbackup_id: b\ntarget:\n  bootstrap_servers: ['h:1']\n"
    "  client_config:\n{cc}storage:\n  backend: filesystem\n  path: {path}\n"
)


def job(tmp_path: Path, template: str, cc: dict[str, str], extra: str = "") -> Path:
    lines = "".join(f"    {k}: {v}\n" for k, v in cc.items()) or "    {}\n"
    path = tmp_path / "job.yaml"
    path.write_text(template.format(cc=lines, path=tmp_path / "store") + extra)
    return path


@pytest.mark.parametrize(
    ("prop", "value"),
    [
        ("enable.auto.commit", "true"),
        ("enable.auto.offset.store", "1"),
        ("enable.partition.eof", "false"),
        ("auto.offset.reset", "earliest"),
        ("isolation.level", "read_uncommitted"),  # the backup's is backup.isolation_level (read_committed)
    ],
)
def test_a_backup_refuses_a_client_config_that_changes_its_consumer(
    tmp_path: Path, prop: str, value: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_job(str(job(tmp_path, BACKUP, {prop: value})))
    assert info.value.key == f"source.client_config.{prop}"
    assert str(info.value).startswith(f"{tmp_path / 'job.yaml'}: source.client_config.{prop}: libkb needs ")
    assert "remove it from source.client_config" in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("prop", "value"),
    [("acks", "1"), ("acks", "0"), ("enable.idempotence", "false"), ("delivery.report.only.error", "f"),
     ("isolation.level", "read_committed"), ("auto.offset.reset", "latest")],
)  # fmt: skip
def test_a_restore_refuses_a_client_config_that_changes_its_clients(
    tmp_path: Path, prop: str, value: str
) -> None:
    with pytest.raises(ConfigError, match=rf"target\.client_config\.{prop}: libkb needs .*; remove it from"):
        load_job(str(job(tmp_path, RESTORE, {prop: value})))


def test_the_refusal_stops_the_job_before_it_touches_the_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["restore", "--config", str(job(tmp_path, RESTORE, {"acks": "1"}))]) == 1
    err = capsys.readouterr().err
    assert "target.client_config.acks: libkb needs acks=all" in err
    assert not (tmp_path / "store").exists()


def test_restating_libkbs_values_in_any_spelling_is_accepted(tmp_path: Path) -> None:
    same = {"acks": "-1", "enable.idempotence": "'true'", "delivery.report.only.error": "1"}
    assert load_job(str(job(tmp_path, RESTORE, same))).target is not None
    same = {"enable.auto.commit": "false", "enable.partition.eof": "t", "isolation.level": "READ_UNCOMMITTED"}
    backup = job(tmp_path, BACKUP, same, "backup:\n  isolation_level: read_uncommitted\n")
    assert load_job(str(backup)).source is not None


TUNING = ("compression.type", "linger.ms", "batch.size")


def settings(client_config: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    return client_settings(SourceOptions(("h:1",), client_config=client_config), "libkb-restore", extra)


def test_client_config_tunes_the_restore_producer() -> None:
    default = settings({}, producer_config(RestoreOptions()))
    assert (default["compression.type"], default["linger.ms"], default["batch.size"]) == (
        "lz4",
        20,
        1_048_576,
    )
    tuned = settings(
        {"compression.type": "none", "linger.ms": 5, "batch.size": 65536, "client.id": "dr-restore"},
        producer_config(RestoreOptions()),
    )
    assert [tuned[k] for k in TUNING] == ["none", 5, 65536]
    assert tuned["client.id"] == "dr-restore"  # a quota's client id
    assert (tuned["enable.idempotence"], tuned["acks"], tuned["delivery.report.only.error"]) == (
        True,
        "all",
        True,
    )


def test_options_built_in_code_still_get_libkbs_fixed_values() -> None:
    """Only a job file is checked when it loads; a client built from options made in code keeps libkb's."""
    config = settings({"acks": 0, "enable.idempotence": False}, producer_config(RestoreOptions()))
    assert (config["acks"], config["enable.idempotence"]) == ("all", True)
    assert callable(config["error_cb"])
