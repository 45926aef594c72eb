"""``status`` of a stored backup: its lease and last run, read-only; the command's outputs and exit statuses.

Leases are taken with the real :class:`~libkb.backup.lease.Lease`; the live
endpoint part is in ``tests/ops/test_status.py``, the real broker in
``integration/test_cli_status.py``.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
import yaml

from libkb.backup.lease import Lease, LeaseInfo
from libkb.catalog import BackupNotFoundError, iso_ms
from libkb.catalog.status import LeaseStatus, backup_status
from libkb.cli import main
from libkb.format.models import Manifest, RunInfo, lease_generation_key, lease_key, manifest_key
from libkb.storage import StorageBackend
from tests.cli.stored import write_backup

Store = tuple[str, StorageBackend]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def now_ms() -> int:
    return int(time.time() * 1000)


def start_run(backend: StorageBackend, backup_id: str, run_id: str) -> None:
    """What a run records in the manifest once it holds the lease."""
    manifest = Manifest.from_json(backend.get(manifest_key(backup_id)))
    manifest.runs.append(RunInfo(run_id, now_ms(), mode="continuous"))
    backend.put(manifest_key(backup_id), manifest.to_json())


def put_lease(backend: StorageBackend, backup_id: str, info: LeaseInfo) -> None:
    backend.put(lease_generation_key(backup_id, info.generation), info.to_json())


def test_a_finished_backup_shows_its_last_run_and_totals(backend: StorageBackend) -> None:
    write_backup(backend, "b1")
    status = backup_status(backend, "b1", "here")
    assert (status.state, status.running, status.lease, status.location) == ("complete", False, None, "here")
    assert status.last_run is not None and (status.last_run.records, status.last_run.bytes) == (42, 4200)
    assert (status.records, status.partitions, status.topics, status.runs) == (60, 3, ["events", "orders"], 1)
    assert status.stored_bytes > 0 and status.notes == []


def test_a_run_holding_the_lease_is_running_then_interrupted_once_it_expires(backend: StorageBackend) -> None:
    write_backup(backend, "b1")
    lease = Lease(backend, lease_key("b1"), "run-2", ttl_secs=60)
    lease.acquire()
    try:
        starting = backup_status(backend, "b1")
        assert starting.state == "starting" and starting.running
        assert "run-2 holds the lease and has not recorded itself" in starting.notes[0]
        start_run(backend, "b1", "run-2")
        running = backup_status(backend, "b1")
        assert (running.state, running.running) == ("running", True)
        assert running.lease is not None and running.lease.valid and running.lease.run_id == "run-2"
        assert running.lease.renewed_ms is not None and not running.lease.renewal_overdue
        assert running.to_dict()["lease"]["expires"].endswith("Z")
    finally:
        lease.release()
    released = backup_status(backend, "b1")
    assert released.state == "interrupted" and not released.running
    assert "its lease was released" in released.notes[0]
    # A process killed without releasing: the lease expires (the writer's clock) and the run is interrupted.
    put_lease(backend, "b1", LeaseInfo("run-2", "host-a", 4242, now_ms() - 1000, generation=1))
    expired = backup_status(backend, "b1")
    assert expired.state == "interrupted"
    assert expired.lease is not None and not expired.lease.valid and expired.lease.host == "host-a"
    assert "did not record its end and its lease expired at" in expired.notes[0]


def test_a_run_that_recorded_its_end_keeps_its_outcome(backend: StorageBackend) -> None:
    write_backup(backend, "b1")
    put_lease(backend, "b1", LeaseInfo("run-1", "h", 1, now_ms(), generation=1, released=True))
    status = backup_status(backend, "b1")
    assert status.state == "complete" and status.lease is not None and status.lease.released


def test_a_first_run_without_a_manifest_yet_is_starting(backend: StorageBackend) -> None:
    put_lease(backend, "fresh", LeaseInfo("run-1", "h", 1, now_ms() + 60_000, generation=1))
    status = backup_status(backend, "fresh")
    assert (status.state, status.last_run, status.records, status.runs) == ("starting", None, 0, 0)


def test_an_unknown_backup_names_the_ones_there(backend: StorageBackend) -> None:
    write_backup(backend, "b1")
    with pytest.raises(BackupNotFoundError, match=r"no backup 'b2' at somewhere \(backups there: b1\)"):
        backup_status(backend, "b2", "somewhere")


def test_overdue_renewal_is_read_off_the_lease_itself() -> None:
    now = now_ms()

    def lease(renewed_ago: int, ttl: int = 30_000, valid: bool = True) -> LeaseStatus:
        renewed = now - renewed_ago
        return LeaseStatus("k", 1, "r", "h", 1, renewed + ttl, False, valid, renewed)

    assert not lease(5_000).renewal_overdue  # renewed every ttl/3 = 10 s
    assert lease(25_000).renewal_overdue  # two renewals missed
    assert not lease(25_000, valid=False).renewal_overdue  # expired: no longer a hint, a fact


def test_overdue_renewal_shows_as_a_note(store: Store) -> None:
    path, backend = store
    write_backup(backend, "b1")
    start_run(backend, "b1", "run-2")
    put_lease(backend, "b1", LeaseInfo("run-2", "h", 1, now_ms() + 10_000, generation=1))
    stale = time.time() - 50  # written 50 s ago with 60 s to live: renewals every 20 s were missed
    os.utime(Path(path) / "b1" / "lease" / "000000000001.json", (stale, stale))
    status = backup_status(backend, "b1")
    assert status.state == "running" and status.lease is not None and status.lease.renewal_overdue
    assert "is overdue: its run may have died" in status.notes[0]


@pytest.mark.parametrize(("written_ago", "takeover"), [(70, "from "), (15, "now")])
def test_an_expired_lease_says_when_another_run_may_take_it_over(
    store: Store, written_ago: int, takeover: str
) -> None:
    """A run that died: its lease expired; another run may take it over one TTL after (or now)."""
    path, backend = store
    write_backup(backend, "b1")
    start_run(backend, "b1", "run-2")
    expired = now_ms() - 10_000
    put_lease(backend, "b1", LeaseInfo("run-2", "h", 1, expired, generation=1))
    written = expired / 1000 - (written_ago - 10)  # a TTL of 60 s or 5 s, read off the lease
    os.utime(Path(path) / "b1" / "lease" / "000000000001.json", (written, written))
    status = backup_status(backend, "b1")
    assert status.state == "interrupted"
    if takeover == "now":
        assert "and another run may take it over now" in status.notes[0]
    else:
        at = status.lease.takeover_ms if status.lease else None
        assert at is not None and at > now_ms()
        assert f"(another run may take it over from {iso_ms(at)}, one TTL later)" in status.notes[0]


def test_status_command_outputs(capsys: pytest.CaptureFixture[str], store: Store) -> None:
    path, backend = store
    write_backup(backend, "b1")
    code, out, err = run(capsys, "status", "--path", path, "--backup-id", "b1")
    assert code == 0, err
    assert out.startswith(f"Backup:      b1 at {path}\nState:       complete\n")
    assert "Last run:    run-1 (snapshot), started 2023-11-14T22:15:00.000Z, complete" in out
    assert "Stored:      60 records" in out
    code, out, _ = run(capsys, "status", "-p", path, "-b", "b1", "-f", "json")
    body = json.loads(out)
    assert code == 0 and body["backup"]["state"] == "complete" and body["job"] is None
    assert body["backup"]["last_run"]["records"] == 42 and body["errors"] == []
    code, out, _ = run(capsys, "status", "-p", path, "-b", "b1", "--format", "yaml")
    assert code == 0 and yaml.safe_load(out)["backup"]["records"] == 60


def test_status_of_a_mistyped_path_creates_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    typo = tmp_path / "bakcups"
    code, out, err = run(capsys, "status", "--path", str(typo), "--backup-id", "b1")
    assert (code, out) == (1, "")
    assert (
        err == f"kafka-backup: error: no backup 'b1' at {typo}: nothing is stored there (it does not exist)\n"
    )
    assert not typo.exists()
    code, _, err = run(capsys, "status", "--path", f"file://{typo}/deeper", "--backup-id", "b1", "--watch")
    assert code == 1 and "nothing is stored there" in err and not typo.exists()


def test_status_of_an_unknown_backup_id_writes_nothing(
    capsys: pytest.CaptureFixture[str], store: Store
) -> None:
    path, backend = store
    write_backup(backend, "b1")
    before = sorted(p.relative_to(path) for p in Path(path).rglob("*"))
    code, _, err = run(capsys, "status", "--path", path, "--backup-id", "b2")
    assert code == 1 and "no backup 'b2'" in err and "backups there: b1" in err
    assert sorted(p.relative_to(path) for p in Path(path).rglob("*")) == before


@pytest.mark.parametrize(
    "argv",
    [
        ["status"],
        ["status", "--path", "x"],
        ["status", "--backup-id", "b"],
        ["status", "--path", "x", "--backup-id", "b", "--interval", "0"],
        ["status", "--path", "x", "--backup-id", "b", "--format", "csv"],
    ],
)
def test_status_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == "" and "usage: kafka-backup status" in err


def test_status_from_a_job_file_without_metrics(capsys: pytest.CaptureFixture[str], store: Store) -> None:
    """The job's backup, as stored; the note says there is no endpoint to ask. --db-path is not used."""
    path, backend = store
    write_backup(backend, "b1")
    config = Path(path).parent / "job.yaml"
    config.write_text(
        "backup_id: b1\nsource:\n  bootstrap_servers: [localhost:9092]\n"
        f"storage:\n  backend: filesystem\n  path: {path}\n"
    )
    code, out, err = run(capsys, "status", "--config", str(config), "--db-path", "/var/offsets.db")
    assert code == 0, err
    assert "State:       complete" in out
    assert f"Note:        {config} has no metrics enabled" in out
    assert "--db-path /var/offsets.db: not used" in err
