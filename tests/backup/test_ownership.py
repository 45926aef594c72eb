"""Partition ownership over the backup's lease: acquire, fence each write, release."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from libkb.backup.lease import LeaseHeldError, LeaseLostError, read_lease
from libkb.backup.ownership import LeaseOwnership, PartitionOwnership
from libkb.format.models import lease_generation_key
from libkb.storage import MemoryConfig, StorageBackend, create_backend_from_config

BID = "bk"
TTL = 5.0  # seconds; nothing waits for it


@pytest.fixture
def backend() -> Iterator[StorageBackend]:
    with create_backend_from_config(MemoryConfig()) as b:
        yield b


@pytest.fixture
def owned(backend: StorageBackend) -> Iterator[LeaseOwnership]:
    ownership = LeaseOwnership(backend, BID, "run-a", TTL)
    ownership.acquire()
    yield ownership
    ownership.release()


def test_a_lease_is_a_partition_ownership(backend: StorageBackend) -> None:
    ownership: PartitionOwnership = LeaseOwnership(backend, BID, "run-a", TTL)
    assert not ownership.lost()


def test_the_fencing_token_is_the_lease_generation(backend: StorageBackend, owned: LeaseOwnership) -> None:
    assert owned.check("orders", 0, "index") == 1
    assert owned.check("orders", 7, "index") == 1  # one lease owns every partition
    assert owned.check_backup("manifest") == 1
    owned.release()
    again = LeaseOwnership(backend, BID, "run-b", TTL)
    again.acquire()
    try:
        assert again.check("orders", 0, "index") == 2
    finally:
        again.release()


def test_a_second_owner_is_refused(backend: StorageBackend, owned: LeaseOwnership) -> None:
    with pytest.raises(LeaseHeldError, match="run-a"):
        LeaseOwnership(backend, BID, "run-b", TTL).acquire()


def test_a_lost_lease_fails_every_fence_naming_the_write(owned: LeaseOwnership) -> None:
    owned.lease.lost.set()  # what renewal does when it finds a successor
    assert owned.lost()
    with pytest.raises(LeaseLostError, match=r"lost the lease on backup 'bk'; .*; orders/0 is not indexed"):
        owned.check("orders", 0, "orders/0 is not indexed")
    with pytest.raises(LeaseLostError, match="another run may be writing it"):
        owned.check_backup("another run may be writing it")


def test_a_successor_fences_the_writes(backend: StorageBackend, owned: LeaseOwnership) -> None:
    backend.delete(owned.lease.held_key)  # taken over and cleaned up by another run
    assert not owned.lease.renew()
    with pytest.raises(LeaseLostError):
        owned.check("orders", 0, "index")


def test_release_frees_the_backup_for_the_next_run(backend: StorageBackend) -> None:
    ownership = LeaseOwnership(backend, BID, "run-a", TTL)
    ownership.acquire()
    ownership.release()
    info = read_lease(backend, lease_generation_key(BID, 1))
    assert info is not None and info.released


def test_a_fence_before_acquiring_is_a_programming_error(backend: StorageBackend) -> None:
    with pytest.raises(RuntimeError, match="not acquired"):
        LeaseOwnership(backend, BID, "run-a", TTL).check("orders", 0, "index")
