"""``prune`` on every cloud backend (MinIO, SeaweedFS, Azurite, fake-gcs-server), Kafka faked.

The same promises as ``tests/prune`` on the local backends: a plan changes
nothing and an execution deletes exactly it; what stays validates and
restores exactly; a segment deleted behind libkb's back is a missing object
that a restore names; whole backups go, the newest kept. A prune killed
before a storage call, at sampled instants (the first call, the first index
write, the first segment delete, the middle and the last), leaves a valid
backup and a re-run finishes it; every instant is covered on the local
backends.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from integration.storage.configs import azure_config, gcs_config, s3_config
from libkb.catalog import validate_backup
from libkb.format.models import index_key
from libkb.prune import delete_backups, execute_prune, plan_prune
from libkb.retention import RetentionPolicy
from libkb.storage import NotFoundError, StorageBackend, create_backend_from_config
from tests.cli.stored import write_backup
from tests.fakes import FakeKafka, KillingBackend, ProcessKilled
from tests.fakes.jobs import BACKUP_ID, TOPIC, restore_config, restore_engine
from tests.prune.support import (
    CUTOFF_MS,
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

POLICY = RetentionPolicy(cutoff_ms=CUTOFF_MS, keep_segments=1, reason="kafka-backup prune --before T")
#: Opens the location under a prefix of the test's own bucket or container.
Location = Callable[[str], StorageBackend]


@pytest.fixture(params=["minio", "seaweedfs", "azurite", "fake-gcs"])
def location(request: pytest.FixtureRequest) -> Location:
    store = request.param
    if store in ("minio", "seaweedfs"):
        bucket: Any = request.getfixturevalue(f"{store}_bucket")
        return lambda prefix: create_backend_from_config(s3_config(bucket, prefix))
    if store == "azurite":
        container: Any = request.getfixturevalue("azurite_container")
        return lambda prefix: create_backend_from_config(azure_config(container, prefix))
    gcs: Any = request.getfixturevalue("gcs_bucket")
    return lambda prefix: create_backend_from_config(gcs_config(gcs, prefix))


def test_plan_execute_validate_restore_and_a_lifecycle_deletion(location: Location) -> None:
    backend = location("one")
    kafka = backed_up(backend)
    before = backend.list("")
    plan = plan_prune(backend, BACKUP_ID, POLICY)
    assert backend.list("") == before and plan.plan.segments == 3
    done = execute_prune(backend, BACKUP_ID, POLICY)
    assert [c.to_dict() for c in done.plan.cuts] == [c.to_dict() for c in plan.plan.cuts]
    assert not {s.key for c in done.plan.cuts for s in c.segments} & set(stored_segments(backend))
    assert assert_valid(backend) == [w for w in assert_valid(backend) if "retention" in w]
    assert_restores_kept(backend, kafka.cluster)

    lost = coverage(backend)[0].segments[0].key
    backend.delete(lost)  # as an age-based bucket lifecycle rule would
    report = validate_backup(backend, BACKUP_ID)
    assert report.problems == [f"{lost}: listed in {index_key(BACKUP_ID, TOPIC, 0)} but not stored"]
    with pytest.raises(NotFoundError, match="deleted by something other than libkb") as failed:
        restore_engine(FakeKafka(), backend, restore_config(restore_id="after-the-rule")).run()
    assert lost in str(failed.value)


def test_whole_backups_go_and_the_newest_stays(location: Location) -> None:
    backend = location("many")
    backed_up(backend)
    write_backup(backend, "old", {"logs": 1})
    report = delete_backups(backend, cutoff_ms=int(time.time() * 1000) - 86_400_000, keep_last=1)
    assert {v.backup_id: v.action for v in report.verdicts} == {BACKUP_ID: "keep", "old": "delete"}
    assert not [k for k in backend.list("") if k.startswith("old/")]
    assert_valid(backend)


def state(backend: StorageBackend) -> tuple[object, list[str]]:
    """Each partition's segments and pruned ranges (not when), and the segments in storage."""
    indexes = coverage(backend)
    return {p: ([s.key for s in i.segments], without_times(i.pruned)) for p, i in indexes.items()}, sorted(
        stored_segments(backend)
    )


def kill_campaign(
    location: Location, monkeypatch: pytest.MonkeyPatch, pick: Callable[[list[str]], list[int]]
) -> int:
    """Kill the prune before each call ``pick`` chooses; after each kill the backup is whole. Instants."""
    template = location("template")
    kafka = backed_up(template)
    probe = KillingBackend(location("probe"))
    copy_into(template, probe.inner)
    execute_prune(probe, BACKUP_ID, POLICY)
    final, calls = state(probe.inner), probe.calls
    instants = pick(calls)
    for k in instants:
        backend = location(f"kill-{k}")
        copy_into(template, backend)
        with pytest.raises(ProcessKilled):
            execute_prune(KillingBackend(backend, kill_at=k), BACKUP_ID, POLICY)
        assert_valid(backend)
        assert_reads_kept(backend, kafka.cluster)
        with later(monkeypatch):
            execute_prune(backend, BACKUP_ID, POLICY)
        assert state(backend) == final, f"killed before call {k}: {calls[k - 1]}"
    return len(instants)


def sampled(calls: list[str]) -> list[int]:
    """The first call, the first index write, the first segment delete, the middle and the last."""
    first_put = next(i for i, c in enumerate(calls, 1) if c.startswith("put ") and c.endswith("index.json"))
    first_delete = next(i for i, c in enumerate(calls, 1) if c.startswith("delete") and c.endswith(".kbs"))
    return sorted({1, first_put, first_delete, len(calls) // 2, len(calls)})


def test_a_prune_killed_at_sampled_instants_leaves_a_valid_backup_and_a_rerun_finishes_it(
    location: Location, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert kill_campaign(location, monkeypatch, sampled) == 5


@pytest.mark.soak
def test_a_prune_killed_at_every_instant_on_a_cloud_backend(
    location: Location, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert kill_campaign(location, monkeypatch, lambda calls: list(range(1, len(calls) + 1))) > 20
