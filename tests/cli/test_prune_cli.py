"""``kafka-backup prune``: its flags (the Rust tool's where it has them), outputs and exit statuses."""

from __future__ import annotations

import json
import time

import pytest

from libkb.backup.ownership import LeaseOwnership
from libkb.cli import main
from libkb.format.models import Manifest, manifest_key, segment_key
from libkb.storage import StorageBackend
from tests.cli.stored import BASE_TS, write_backup

Store = tuple[str, StorageBackend]
DAY_MS = 86_400_000


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--backup-id", "b1"], "nothing selects what to prune"),
        (["--backup-id", "b1", "--keep-segments", "2"], "nothing selects what to prune"),
        (
            ["--backup-id", "b1", "--older-than", "30d", "--before", "2024-01-01T00:00:00Z"],
            "not allowed with",
        ),
        (["--backup-id", "b1", "--all-backups", "--older-than", "30d"], "not allowed with"),
        (["--older-than", "30d"], "one of the arguments --backup-id --all-backups is required"),
        (["--backup-id", "b1", "--older-than", "30"], "write a number and a unit"),
        (["--backup-id", "b1", "--before", "yesterday"], "neither epoch milliseconds nor ISO-8601"),
        (["--backup-id", "b1", "--max-total-bytes", "-5"], "not a whole number"),
        (["--backup-id", "b1", "--older-than", "30d", "--keep-last", "2"], "use it with --all-backups"),
        (["--all-backups", "--keep-segments", "2", "--keep-last", "1"], "use them with --backup-id"),
        (["--all-backups"], "nothing selects which backups to delete"),
        (["--backup-id", "b1", "--older-than", "30d", "--force"], "its lease decides"),
    ],
)
def test_usage_errors_exit_2_and_say_why(
    capsys: pytest.CaptureFixture[str], store: Store, argv: list[str], says: str
) -> None:
    path, backend = store
    write_backup(backend, "b1")
    before = backend.list("")
    code, _out, err = run(capsys, "prune", "--path", path, *argv)
    assert code == 2 and says in err
    assert backend.list("") == before


def test_force_is_refused_with_the_reason(capsys: pytest.CaptureFixture[str], store: Store) -> None:
    path, backend = store
    write_backup(backend, "b1")
    _, _, err = run(capsys, "prune", "--path", path, "--backup-id", "b1", "--older-than", "1d", "--force")
    assert "its lease decides" in err and "expires by itself" in err


def test_a_plan_by_default_then_execute_as_text_and_json(
    capsys: pytest.CaptureFixture[str], store: Store
) -> None:
    path, backend = store
    write_backup(backend, "b1", {"orders": 2}, segments=3)
    cutoff = str(BASE_TS + 15)  # the first segment of each partition holds offsets 0-9 (times +0..+9)
    code, out, _ = run(capsys, "prune", "--path", path, "--backup-id", "b1", "--before", cutoff)
    assert code == 0 and "would prune (a plan: nothing is deleted; add --execute)" in out
    assert "orders  0          [0, 10)" in out and "total: 2 segments, 20 records" in out
    before = backend.list("")

    code, out, _ = run(
        capsys, "prune", "--path", path, "--backup-id", "b1", "--before", cutoff, "--format", "json"
    )
    plan = json.loads(out)
    assert code == 0 and plan["executed"] is False and backend.list("") == before
    assert [
        (p["partition"], p["start_offset"], p["end_offset"], p["segments"]) for p in plan["partitions"]
    ] == [
        (0, 0, 10, 1),
        (1, 0, 10, 1),
    ]
    assert plan["policy"]["reason"].startswith("kafka-backup prune --before 2023-11-14T")

    code, out, _ = run(capsys, "prune", "--path", path, "--backup-id", "b1", "--before", cutoff, "--execute")
    assert code == 0 and "backup b1: pruned" in out and "2 segments, 20 records" in out
    gone = set(before) - set(backend.list(""))
    assert gone == {segment_key("b1", "orders", 0, 0), segment_key("b1", "orders", 1, 0)}
    code, out, _ = run(capsys, "validate", "--path", path, "--backup-id", "b1")
    assert code == 0 and "note:" in out and "were pruned on" in out
    code, out, _ = run(capsys, "describe", "--path", path, "--backup-id", "b1")
    assert "orders/0: offsets [0, 10) pruned" in out


def test_execute_is_refused_while_a_backup_runs(capsys: pytest.CaptureFixture[str], store: Store) -> None:
    path, backend = store
    write_backup(backend, "b1")
    running = LeaseOwnership(backend, "b1", "20240101T000000Z-abcdef01", 60)
    running.acquire()
    try:
        code, out, _ = run(capsys, "prune", "--path", path, "--backup-id", "b1", "--max-total-bytes", "0")
        assert code == 0 and "--execute would be refused" in out
        args = ("prune", "--path", path, "--backup-id", "b1", "--max-total-bytes", "0", "--execute")
        code, _, err = run(capsys, *args)
        assert code == 1 and "cannot prune now" in err and "20240101T000000Z-abcdef01" in err
    finally:
        running.release()


def test_an_unknown_backup_names_the_ones_there(capsys: pytest.CaptureFixture[str], store: Store) -> None:
    path, backend = store
    write_backup(backend, "b1")
    code, _, err = run(capsys, "prune", "--path", path, "--backup-id", "nope", "--older-than", "1d")
    assert code == 1 and "no backup 'nope'" in err and "b1" in err


def test_all_backups_keeps_the_newest_and_deletes_the_old(
    capsys: pytest.CaptureFixture[str], store: Store
) -> None:
    path, backend = store
    for name in ("old-1", "old-2", "new"):
        write_backup(backend, name, {"logs": 1})
    _touch(backend, "new")  # written today
    code, out, _ = run(capsys, "prune", "--path", path, "--all-backups", "--older-than", "30d")
    assert code == 0 and "2 backup(s) to delete" in out
    assert backend.exists(manifest_key("old-1"))
    code, out, _ = run(
        capsys, "prune", "--path", path, "--all-backups", "--keep-last", "2", "--format", "json"
    )
    verdicts = {b["backup_id"]: b["action"] for b in json.loads(out)["backups"]}
    assert verdicts == {"new": "keep", "old-1": "delete", "old-2": "keep"}  # ties: the later id ranks newer

    running = LeaseOwnership(backend, "old-1", "20240101T000000Z-abcdef01", 60)
    running.acquire()
    try:
        code, out, _ = run(
            capsys, "prune", "--path", path, "--all-backups", "--older-than", "30d", "--execute"
        )
    finally:
        running.release()
    assert code == 0 and "a run holds its lease" in out
    assert [k.split("/")[0] for k in backend.list("") if k.endswith("manifest.json")] == ["new", "old-1"]
    assert not [k for k in backend.list("") if k.startswith("old-2/")]


def _touch(backend: StorageBackend, backup_id: str) -> None:
    manifest = Manifest.from_json(backend.get(manifest_key(backup_id)))
    manifest.updated_ms = int(time.time() * 1000)
    backend.put(manifest_key(backup_id), manifest.to_json())
