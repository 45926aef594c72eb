"""``three-phase-restore``: its report and exit status (a broker: integration/test_cli_three_phase.py)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from libkb.cli import main
from libkb.cli.jobfile import load_job
from libkb.cli.logs import configure
from libkb.cli.three_phase import OffsetPhase, ThreePhaseReport, report_text


def test_a_backup_job_file_is_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    config = tmp_path / "backup.yaml"
    config.write_text(
        "backup_id: b\nsource:\n  bootstrap_servers: [k:9092]\n"
        f"storage:\n  backend: filesystem\n  path: {tmp_path}\n"
    )
    assert main(["three-phase-restore", "--config", str(config)]) == 1
    assert "mode: mode is 'backup'; this command needs mode: restore" in capsys.readouterr().err


def test_the_report_says_what_each_phase_did() -> None:
    report = ThreePhaseReport(
        "bk",
        "r-1",
        "complete",
        records=600,
        bytes=61_440,
        partitions=2,
        topics=["orders-copy"],
        mapped_partitions=2,
        offsets=OffsetPhase("applied", ["audit", "billing"], 3, 3, 3),
        duration_secs=1.25,
    )
    assert report.success
    assert report_text(report).splitlines() == [
        "three-phase restore of backup bk: success in 1.2s",
        "  phase 2 (restore r-1): complete: 600 records, 60.0 KiB, 2 partition(s) of 1 topic(s); "
        "offset mapping of 2 partition(s)",
        "  phase 3 (offset reset): applied: 2 group(s), 3 partition offset(s) planned, 3 reset, 3 verified",
    ]
    report.offsets = OffsetPhase(
        "failed", ["billing"], 2, 0, 0, ["consumer group 'billing' has 1 active member(s)"]
    )
    report.warnings.append("something to know")
    assert not report.success and report.to_dict()["success"] is False
    assert report_text(report).splitlines()[-2:] == [
        "    error: consumer group 'billing' has 1 active member(s)",
        "  warning: something to know",
    ]
    assert not ThreePhaseReport("bk", restore_status="interrupted").success


def test_a_job_file_loaded_twice_warns_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Phase 3 reads the job file again (offset-reset execute's --config): its warnings are not repeated."""
    config = tmp_path / "restore.yaml"
    config.write_text(
        "mode: restore\nbackup_id: b\ntarget:\n  bootstrap_servers: [k:9092]\n"
        f"storage:\n  backend: filesystem\n  path: {tmp_path}\nrestore:\n  checkpoint_interval_secs: 5\n"
    )
    configure(0)
    with caplog.at_level(logging.WARNING, logger="libkb.config"):
        load_job(str(config))
        load_job(str(config))
    assert [r.getMessage() for r in caplog.records].count(caplog.records[0].getMessage()) == 1
    assert "checkpoint_interval_secs" in caplog.records[0].getMessage()
