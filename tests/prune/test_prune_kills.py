"""A prune killed between any two of its storage calls leaves a valid backup, and a re-run finishes it.

Each test runs the prune once to count its storage calls, then once per
instant: killed before call ``k`` for every ``k`` (``KillingBackend``: the
killed call and every later one, from any thread, never reach storage, as
after ``kill -9``). After each kill the backup validates (deep), a restore
gives exactly the records it still holds, and a re-run of the same prune
(once the dead prune's lease has expired) ends in the same state as a prune
that was never stopped, with no pruned segment left in storage. On the
memory and the filesystem backend; the cloud backends are sampled in
``integration/prune``.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from integration.kafka_data import BASE_TS
from libkb.catalog import list_backups, validate_backup
from libkb.format.models import manifest_key
from libkb.prune import delete_backups, execute_prune
from libkb.retention import RetentionPolicy
from libkb.storage import FilesystemConfig, MemoryConfig, StorageBackend, create_backend_from_config
from tests.cli.stored import write_backup
from tests.fakes import KillingBackend, ProcessKilled
from tests.fakes.jobs import BACKUP_ID, PARTITIONS
from tests.prune.support import (
    assert_reads_kept,
    assert_restores_kept,
    assert_valid,
    backed_up,
    copy_into,
    coverage,
    later,
    stored_segments,
    without_times,
)

#: Two segments of each partition go: six deletes, three index writes.
POLICY = RetentionPolicy(cutoff_ms=BASE_TS + 270_000, keep_segments=1, reason="kafka-backup prune --before T")
DAY_MS = 86_400_000


class Copies:
    """Copies of one location for each instant: memory by puts, filesystem by copying the directory."""

    def __init__(self, kind: str, tmp_path: Path) -> None:
        self.kind = kind
        self.tmp_path = tmp_path
        self.template = self._open(tmp_path / "template")

    def _open(self, where: Path) -> StorageBackend:
        config = MemoryConfig() if self.kind == "memory" else FilesystemConfig(str(where))
        return create_backend_from_config(config)

    def copy(self, name: str) -> StorageBackend:
        if self.kind == "memory":
            backend = self._open(self.tmp_path / name)
            copy_into(self.template, backend)
            return backend
        shutil.copytree(self.tmp_path / "template", self.tmp_path / name)  # no fsync per object
        return self._open(self.tmp_path / name)


def final_state(backend: StorageBackend) -> tuple[object, list[str]]:
    """Each partition's segments and pruned ranges (not when), and the segments in storage."""
    indexes = coverage(backend)
    state = {p: ([s.key for s in i.segments], without_times(i.pruned)) for p, i in indexes.items()}
    return state, stored_segments(backend)


def count_calls(copies: Copies, run: Callable[[StorageBackend], object]) -> tuple[int, list[str]]:
    """The number of storage calls ``run`` makes on a copy of the template, and the calls' names."""
    probe = KillingBackend(copies.copy("probe"))
    run(probe)
    return len(probe.calls), probe.calls


def prune_campaign(
    kind: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    restore_at: Callable[[int, int], bool],
    policy: RetentionPolicy = POLICY,
    **backup: object,
) -> tuple[int, list[str]]:
    """Kill the prune before each of its calls in turn; the instants' count and calls.

    At every instant: deep validation, the records a restore reads, the re-run.
    Where ``restore_at(k, calls)``: a real restore too.
    """
    copies = Copies(kind, tmp_path)
    kafka = backed_up(copies.template, **backup)
    calls, names = count_calls(copies, lambda b: execute_prune(b, BACKUP_ID, policy))
    done = copies.copy("whole")
    execute_prune(done, BACKUP_ID, policy)
    want = final_state(done)

    for k in range(1, calls + 1):
        backend = copies.copy(f"kill-{k}")
        with pytest.raises(ProcessKilled):
            execute_prune(KillingBackend(backend, kill_at=k), BACKUP_ID, policy)
        assert_valid(backend)
        assert_reads_kept(backend, kafka.cluster)
        if restore_at(k, calls):
            assert_restores_kept(backend, kafka.cluster)
        with later(monkeypatch):
            execute_prune(backend, BACKUP_ID, policy)
        assert final_state(backend) == want, f"killed before call {k} ({names[k - 1]})"
        assert_valid(backend)
    return calls, names


@pytest.mark.parametrize("kind", ["memory", "filesystem"])
def test_a_prune_killed_at_any_instant_leaves_a_valid_exact_backup_and_a_rerun_finishes_it(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every instant; a real restore at the first, the middle and the last."""
    calls, names = prune_campaign(kind, tmp_path, monkeypatch, lambda k, n: k in (1, n // 2, n))
    assert calls > 10 + 2 * PARTITIONS
    assert sum(n.startswith("delete") and n.endswith(".kbs") for n in names) == 2 * PARTITIONS


#: The long campaign's rules, on a backup of 5-record segments (24 a partition): age with a keep,
#: a size cap alone (cuts chosen across partitions), and an age that takes every segment.
SOAK_POLICIES = {
    "age-keep": POLICY,
    "size": RetentionPolicy(max_total_bytes=6000, reason="kafka-backup prune --max-total-bytes 6000"),
    "everything": RetentionPolicy(cutoff_ms=BASE_TS + 10**7, reason="kafka-backup prune --before T2"),
}


@pytest.mark.soak
@pytest.mark.parametrize("policy", list(SOAK_POLICIES))
@pytest.mark.parametrize("kind", ["memory", "filesystem"])
def test_a_prune_killed_at_any_instant_restores_exactly_there(
    kind: str, policy: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The long campaign: more segments, three rules, a real restore at every instant."""
    calls, _ = prune_campaign(
        kind, tmp_path, monkeypatch, lambda k, n: True, SOAK_POLICIES[policy], segment_max_records=5
    )
    assert calls > 30


def old_and_new(backend: StorageBackend) -> None:
    """``bk`` backed up now; ``old-a`` and ``old-b`` written in 2023 (their newest data too)."""
    backed_up(backend)
    write_backup(backend, "old-a", {"logs": 2}, segments=1)
    write_backup(backend, "old-b", {"logs": 1}, segments=1, groups=False)


@pytest.mark.parametrize("kind", ["memory", "filesystem"])
def test_deleting_whole_backups_killed_at_any_instant_leaves_the_others_whole_and_a_rerun_finishes(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copies = Copies(kind, tmp_path)
    old_and_new(copies.template)
    kept_keys = copies.template.list(f"{BACKUP_ID}/")

    def delete(b: StorageBackend) -> object:
        with later(monkeypatch, 0):
            return delete_backups(b, cutoff_ms=_days_ago(30), keep_last=None)

    calls, names = count_calls(copies, delete)
    assert calls > 10
    for k in range(1, calls + 1):
        backend = copies.copy(f"kill-{k}")
        with pytest.raises(ProcessKilled):
            delete(KillingBackend(backend, kill_at=k))
        for summary in list_backups(backend):  # every backup still listed is whole
            assert validate_backup(backend, summary.backup_id, deep=True).ok, (k, summary.backup_id)
        with later(monkeypatch):
            report = delete_backups(backend, cutoff_ms=_days_ago(30), keep_last=None)
        assert {v.backup_id: v.action for v in report.verdicts if v.action == "delete"}.keys() <= {
            "old-a",
            "old-b",
        }
        assert [k for k in backend.list("") if not k.startswith(f"{BACKUP_ID}/")] == [], names[k - 1]
        assert backend.list(f"{BACKUP_ID}/") == kept_keys
        assert backend.exists(manifest_key(BACKUP_ID))


def _days_ago(days: int) -> int:
    import time

    return int(time.time() * 1000) - days * DAY_MS
