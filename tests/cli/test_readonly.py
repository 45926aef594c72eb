"""Read-only commands create nothing: a mistyped location is an error naming it, never a new directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from libkb.cli.app import main
from libkb.storage import StorageBackend
from tests.cli.stored import write_backup

READ_ONLY = [
    ["list"],
    ["describe", "--backup-id", "b1"],
    ["validate", "--backup-id", "b1"],
    ["validate", "--backup-id", "b1", "--deep"],
    ["show-offset-mapping", "--backup-id", "b1"],
    ["offset-rollback", "list", "--backup-id", "b1"],
    ["offset-rollback", "show", "--backup-id", "b1", "--snapshot-id", "s1"],
    ["status", "--backup-id", "b1"],
]


def _run(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("command", READ_ONLY, ids=lambda c: " ".join(c[:2]))
@pytest.mark.parametrize("scheme", ["", "file://"])
def test_a_read_only_command_on_a_missing_location_names_it_and_creates_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, command: list[str], scheme: str
) -> None:
    typo = tmp_path / "bakcups" / "deeper"
    code, out, err = _run(capsys, [*command, "--path", f"{scheme}{typo}"])
    assert (code, out) == (1, "")
    assert err.count("\n") == 1 and err.startswith("kafka-backup: error: ")
    assert f"{scheme}{typo}" in err and "does not exist" in err
    assert not (tmp_path / "bakcups").exists()


def test_list_of_an_empty_existing_location_is_not_an_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, err = _run(capsys, ["list", "--path", str(tmp_path)])
    assert (code, out, err) == (0, f"no backups at {tmp_path}\n", "")
    assert list(tmp_path.iterdir()) == []


def test_read_only_commands_on_a_stored_backup_leave_it_unchanged(
    capsys: pytest.CaptureFixture[str], store: tuple[str, StorageBackend]
) -> None:
    path, backend = store
    write_backup(backend, "b1")
    before = sorted(backend.list())
    for command in (["list"], ["describe", "--backup-id", "b1"], ["validate", "--backup-id", "b1", "--deep"]):
        assert _run(capsys, [*command, "--path", path])[0] == 0
    assert sorted(backend.list()) == before


@pytest.mark.parametrize(
    ("command", "extra"),
    [
        (["validate-restore"], ""),
        (["restore", "--dry-run"], ""),
        (["restore"], "restore:\n  dry_run: true\n"),  # the job file's dry run plans the same way
    ],
    ids=["validate-restore", "restore --dry-run", "restore.dry_run"],
)
def test_restore_plans_on_a_missing_location_name_it_and_create_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, command: list[str], extra: str
) -> None:
    typo = tmp_path / "bakcups"
    config = tmp_path / "restore.yaml"
    config.write_text(
        "mode: restore\nbackup_id: b1\ntarget:\n  bootstrap_servers: ['localhost:1']\n"
        f"storage:\n  backend: filesystem\n  path: {typo}\n{extra}"
    )
    code, out, err = _run(capsys, [*command, "--config", str(config)])
    assert (code, out) == (1, "")
    assert err == (
        f"kafka-backup: error: nothing is stored at {typo} (the storage of {config}): it does not exist "
        "(check the path, bucket or container name)\n"
    )
    assert not typo.exists()
