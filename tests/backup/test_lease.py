"""The backup lease: one writer per backup id, through numbered lease generations.

Time is driven by writing lease objects with chosen ``expires_ms``, never by
sleeping; interleavings are driven by a backend wrapper that runs another
contender at a chosen call.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pytest

from libkb.backup.lease import (
    Lease,
    LeaseHeldError,
    LeaseInfo,
    LeaseLostError,
    current_lease,
    lease_is_live,
    read_lease,
    takeover_time,
)
from libkb.catalog import describe_backup, list_backups, validate_backup
from libkb.format.models import RunInfo, lease_generation_key, lease_key, legacy_lease_key, manifest_key
from libkb.storage import (
    BackendError,
    BytesLike,
    FilesystemConfig,
    MemoryConfig,
    ObjectMetadata,
    StorageBackend,
    StorageError,
    create_backend_from_config,
)
from libkb.storage.base import DEFAULT_CHUNK_SIZE
from tests.cli.stored import CREATED_MS, write_backup

TTL = 5.0  # seconds; no test waits for it
TTL_MS = int(TTL * 1000)
BID = "bk"


@pytest.fixture(params=["filesystem", "memory"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StorageBackend]:
    """Leases rely only on put_if_absent, put, get, list and delete: the two local backends show it."""
    config = FilesystemConfig(str(tmp_path / "store")) if request.param == "filesystem" else MemoryConfig()
    with create_backend_from_config(config) as b:
        yield b


class Hooked(StorageBackend):
    """Delegates to ``inner``; runs ``before[op]`` once, just before the first call of that operation.

    ``fail`` makes every call raise, as an unreachable store would.
    """

    def __init__(self, inner: StorageBackend) -> None:
        self.inner = inner
        self.before: dict[str, Callable[[], None]] = {}
        self.fail = False
        self.denied = False

    def _hook(self, op: str) -> None:
        if self.denied:
            raise StorageError("access denied", backend="test")
        if self.fail:
            raise BackendError("store unreachable", backend="test", transient=True)
        hook = self.before.pop(op, None)
        if hook is not None:
            hook()

    def put(self, key: str, data: BytesLike) -> None:
        self._hook("put")
        self.inner.put(key, data)

    def get(self, key: str) -> bytes:
        self._hook("get")
        return self.inner.get(key)

    def iter_keys(self, prefix: str = "") -> Iterator[str]:
        self._hook("list")
        return self.inner.iter_keys(prefix)

    def head(self, key: str) -> ObjectMetadata:
        return self.inner.head(key)

    def delete(self, key: str) -> None:
        self._hook("delete")
        self.inner.delete(key)

    def copy(self, src: str, dest: str) -> None:
        self.inner.copy(src, dest)

    def put_stream(self, key: str, chunks: Iterable[BytesLike]) -> None:
        self.inner.put_stream(key, chunks)

    def get_stream(self, key: str, chunk_size: int = DEFAULT_CHUNK_SIZE) -> Iterator[bytes]:
        return self.inner.get_stream(key, chunk_size)

    def get_range(self, key: str, start: int, end: int) -> bytes:
        return self.inner.get_range(key, start, end)

    def put_if_absent(self, key: str, data: BytesLike) -> bool:
        self._hook("put_if_absent")
        return self.inner.put_if_absent(key, data)


@pytest.fixture
def leases() -> Iterator[list[Lease]]:
    """Every Lease a test makes; their renewal threads are stopped afterwards."""
    made: list[Lease] = []
    yield made
    for lease in made:
        lease._stop.set()
        if lease._thread is not None:
            lease._thread.join()


def now_ms() -> int:
    return int(time.time() * 1000)


def put_lease(
    backend: StorageBackend,
    generation: int,
    run_id: str,
    expires_ms: int,
    *,
    released: bool = False,
    host: str = "host-9",
    pid: int = 4242,
) -> str:
    """Write a lease object as some other run left it (generation 0: an earlier build's lease.json)."""
    key = legacy_lease_key(BID) if generation == 0 else lease_generation_key(BID, generation)
    backend.put(key, LeaseInfo(run_id, host, pid, expires_ms, generation, released).to_json())
    return key


def lease_keys(backend: StorageBackend) -> list[str]:
    return backend.list(f"{BID}/lease")


def expired() -> int:
    """An ``expires_ms`` past the expiry and the one ttl of grace."""
    return now_ms() - 3 * TTL_MS


def new_lease(backend: StorageBackend, run_id: str, made: list[Lease], ttl: float = TTL) -> Lease:
    lease = Lease(backend, lease_key(BID), run_id, ttl)
    made.append(lease)
    return lease


# -- taking the lease -------------------------------------------------------------------------------------


def test_a_fresh_backup_gets_generation_1(backend: StorageBackend, leases: list[Lease]) -> None:
    lease = new_lease(backend, "run-a", leases)
    lease.acquire()
    assert lease.generation == 1
    assert lease_keys(backend) == [f"{BID}/lease/000000000001.json"]
    info = read_lease(backend, lease.held_key)
    assert info is not None and info.run_id == "run-a" and info.generation == 1 and not info.released
    assert info.expires_ms > now_ms()
    assert lease_is_live(backend, lease_key(BID))


def test_two_runs_facing_one_expired_lease_end_with_one_holder(
    backend: StorageBackend, leases: list[Lease]
) -> None:
    """The old race: B reads the expired lease, A takes over, then B acts on what it read.

    With delete-then-create, B deleted A's new lease and both held it. Now both
    aim at generation 2 and the create-only write lets exactly one have it.
    """
    put_lease(backend, 1, "run-dead", expired())
    hooked = Hooked(backend)
    a = new_lease(backend, "run-a", leases)
    b = new_lease(hooked, "run-b", leases)
    hooked.before["put_if_absent"] = a.acquire  # after B's list and read, before B's create
    with pytest.raises(LeaseHeldError, match="at the same moment") as refused:
        b.acquire()
    assert not hooked.before  # A did run in between
    assert "run-a" in str(refused.value)
    assert a.generation == 2 and b.generation is None
    assert lease_keys(backend) == [lease_generation_key(BID, 2)]  # B deleted nothing; A cleaned up 1
    info = read_lease(backend, lease_generation_key(BID, 2))
    assert info is not None and info.run_id == "run-a" and not info.released
    assert a.renew() and not a.lost.is_set()


def test_a_contender_that_listed_long_ago_cannot_revive_a_cleaned_up_generation(
    backend: StorageBackend, leases: list[Lease]
) -> None:
    """C saw generation 1 expired, then stalled while X took 2, died, and A took 3 (deleting 1 and 2).

    C's create of generation 2 succeeds on the emptied key, but 3 is above it:
    C must see that and give up, leaving A the only holder.
    """
    put_lease(backend, 1, "run-dead", expired())
    hooked = Hooked(backend)
    c = new_lease(hooked, "run-c", leases)
    x = new_lease(backend, "run-x", leases)
    a = new_lease(backend, "run-a", leases)

    def meanwhile() -> None:
        x.acquire()
        x._stop.set()  # X dies without releasing; its lease expires
        put_lease(backend, 2, "run-x", expired())
        a.acquire()

    hooked.before["put_if_absent"] = meanwhile
    with pytest.raises(LeaseHeldError, match="at the same moment") as refused:
        c.acquire()
    assert not hooked.before
    assert "run-a" in str(refused.value)
    assert a.generation == 3
    assert lease_keys(backend) == [lease_generation_key(BID, 3)]
    assert a.renew()


def test_many_runs_taking_over_at_once_yield_exactly_one_holder(
    backend: StorageBackend, leases: list[Lease]
) -> None:
    put_lease(backend, 1, "run-dead", expired())
    contenders = [new_lease(backend, f"run-{i}", leases) for i in range(8)]
    barrier = threading.Barrier(len(contenders))
    won: list[Lease] = []
    refused: list[Lease] = []

    def race(lease: Lease) -> None:
        barrier.wait()
        try:
            lease.acquire()
            won.append(lease)
        except LeaseHeldError:
            refused.append(lease)

    threads = [threading.Thread(target=race, args=(c,)) for c in contenders]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1 and len(refused) == len(contenders) - 1
    current = current_lease(backend, lease_key(BID))
    assert current is not None and current[1] is not None and current[1].run_id == won[0].run_id


def test_a_live_lease_refuses_a_second_run_naming_the_holder(
    backend: StorageBackend, leases: list[Lease]
) -> None:
    put_lease(backend, 4, "run-live", now_ms() + TTL_MS, host="writer-7", pid=77)
    with pytest.raises(LeaseHeldError) as refused:
        new_lease(backend, "run-b", leases).acquire()
    message = str(refused.value)
    assert "is being written by run run-live on host writer-7 (pid 77)" in message
    assert "valid until" in message
    assert "Wait for it to finish, stop it, or use another backup_id" in message
    assert lease_keys(backend) == [lease_generation_key(BID, 4)]


def test_a_live_lease_refusal_says_when_takeover_becomes_possible(
    backend: StorageBackend, leases: list[Lease]
) -> None:
    expires = (now_ms() // 1000 + 60) * 1000
    put_lease(backend, 4, "run-live", expires)
    with pytest.raises(LeaseHeldError) as refused:
        new_lease(backend, "run-b", leases).acquire()
    until, takeover = (
        time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms / 1000)) for ms in (expires, expires + TTL_MS)
    )
    assert (
        f"its lease is valid until {until}; if its holder stops renewing it, another run may take it over "
        f"from {takeover} (one TTL later)"
    ) in str(refused.value)


def test_an_expired_lease_is_still_honoured_for_one_ttl_of_grace(
    backend: StorageBackend, leases: list[Lease]
) -> None:
    expired = now_ms() - TTL_MS // 2
    put_lease(backend, 1, "run-late", expired)
    with pytest.raises(LeaseHeldError, match="run-late") as refused:
        new_lease(backend, "run-b", leases).acquire()
    # After a run that died, the valid-until time is past: the refusal says so, and when takeover comes.
    takeover = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime((expired + TTL_MS) / 1000))
    assert "(its holder stopped renewing it); another run may take it over from " + takeover in str(
        refused.value
    )
    assert not lease_is_live(backend, lease_key(BID))  # readers see it as expired already


def test_an_expired_lease_is_taken_over_and_older_generations_cleaned_up(
    backend: StorageBackend, leases: list[Lease]
) -> None:
    put_lease(backend, 1, "run-1", expired())  # left by a takeover whose cleanup failed
    put_lease(backend, 3, "run-3", expired())
    lease = new_lease(backend, "run-b", leases)
    lease.acquire()
    assert lease.generation == 4
    assert lease_keys(backend) == [lease_generation_key(BID, 4)]
    info = read_lease(backend, lease.held_key)
    assert info is not None and (info.run_id, info.generation, info.released) == ("run-b", 4, False)


def test_an_unreadable_lease_is_taken_over_at_once(backend: StorageBackend, leases: list[Lease]) -> None:
    backend.put(lease_generation_key(BID, 2), b"{not json")
    lease = new_lease(backend, "run-b", leases)
    lease.acquire()
    assert lease.generation == 3
    assert lease_keys(backend) == [lease_generation_key(BID, 3)]


def test_a_retry_that_finds_its_own_lease_keeps_it(backend: StorageBackend, leases: list[Lease]) -> None:
    """A create whose response was lost is retried: finding our own run id is not a conflict."""
    put_lease(backend, 5, "run-a", now_ms() + TTL_MS)
    lease = new_lease(backend, "run-a", leases)
    lease.acquire()
    assert lease.generation == 5
    assert lease_keys(backend) == [lease_generation_key(BID, 5)]


# -- release ----------------------------------------------------------------------------------------------


def test_release_marks_the_lease_released_and_the_next_run_goes_straight_on(
    backend: StorageBackend, leases: list[Lease]
) -> None:
    first = new_lease(backend, "run-a", leases)
    first.acquire()
    first.release()
    info = read_lease(backend, lease_generation_key(BID, 1))
    assert info is not None and info.released and info.run_id == "run-a"
    assert info.expires_ms <= now_ms()
    assert not lease_is_live(backend, lease_key(BID))
    second = new_lease(backend, "run-b", leases)
    second.acquire()  # no waiting for expiry
    assert second.generation == 2
    assert lease_keys(backend) == [lease_generation_key(BID, 2)]
    second.release()
    assert lease_keys(backend) == [lease_generation_key(BID, 2)]  # never deleted: numbering never restarts


def test_a_run_that_lost_its_lease_does_not_release_it(backend: StorageBackend, leases: list[Lease]) -> None:
    lease = new_lease(backend, "run-a", leases)
    lease.acquire()
    put_lease(backend, 1, "run-b", now_ms() + TTL_MS)
    assert not lease.renew()
    lease.release()
    info = read_lease(backend, lease_generation_key(BID, 1))
    assert info is not None and info.run_id == "run-b" and not info.released


# -- renewal ----------------------------------------------------------------------------------------------


def test_renewal_extends_our_own_generation(backend: StorageBackend, leases: list[Lease]) -> None:
    lease = new_lease(backend, "run-a", leases)
    lease.acquire()
    put_lease(backend, 1, "run-a", now_ms() + 10)  # as if about to expire
    assert lease.renew()
    info = read_lease(backend, lease.held_key)
    assert info is not None and info.expires_ms > now_ms() + TTL_MS // 2 and info.generation == 1
    assert not lease.lost.is_set()


def test_renewal_stops_when_a_higher_generation_appears(backend: StorageBackend, leases: list[Lease]) -> None:
    lease = new_lease(backend, "run-a", leases)
    lease.acquire()
    put_lease(backend, 2, "run-b", now_ms() + TTL_MS)
    assert not lease.renew()
    assert lease.lost.is_set()
    info = read_lease(backend, lease_generation_key(BID, 2))
    assert info is not None and info.run_id == "run-b"  # the successor's lease is untouched


def test_renewal_stops_when_our_key_names_another_run(backend: StorageBackend, leases: list[Lease]) -> None:
    lease = new_lease(backend, "run-a", leases)
    lease.acquire()
    put_lease(backend, 1, "run-b", now_ms() + TTL_MS)
    assert not lease.renew()
    assert lease.lost.is_set()


def test_renewal_stops_when_our_key_is_gone(backend: StorageBackend, leases: list[Lease]) -> None:
    lease = new_lease(backend, "run-a", leases)
    lease.acquire()
    backend.delete(lease.held_key)
    assert not lease.renew()
    assert lease.lost.is_set()
    assert lease_keys(backend) == []  # not re-created


def test_the_renewal_thread_notices_a_successor(backend: StorageBackend, leases: list[Lease]) -> None:
    lease = new_lease(backend, "run-a", leases, ttl=0.03)  # renews every 10 ms
    lease.acquire()
    put_lease(backend, 2, "run-b", now_ms() + TTL_MS)
    assert lease.lost.wait(30)


def test_the_renewal_thread_gives_up_when_renewals_fail_for_another_reason(
    backend: StorageBackend, leases: list[Lease]
) -> None:
    """Storage answers, but not the way renewal needs (a denied write): waiting would not heal it."""
    hooked = Hooked(backend)
    lease = new_lease(hooked, "run-a", leases, ttl=0.03)
    lease.acquire()
    hooked.denied = True
    assert lease.lost.wait(30)
    assert "could not be renewed: [test] access denied" in lease.lost_reason


def test_a_fresh_lease_needs_no_storage_to_fence_a_write(
    backend: StorageBackend, leases: list[Lease]
) -> None:
    hooked = Hooked(backend)
    lease = new_lease(hooked, "run-a", leases)
    lease.acquire()
    hooked.fail = True
    lease.ensure_fresh()  # renewed moments ago: nobody can have taken over


def test_after_an_outage_past_the_ttl_the_next_write_takes_the_next_generation(
    backend: StorageBackend, leases: list[Lease]
) -> None:
    hooked = Hooked(backend)
    lease = new_lease(hooked, "run-a", leases, ttl=0.3)
    lease.acquire()
    hooked.fail = True
    time.sleep(0.5)  # the lease expired while storage was unreachable
    with pytest.raises(StorageError, match="store unreachable"):
        lease.ensure_fresh()  # a write could not go through either
    hooked.fail = False
    lease._stop.set()  # only the write's re-check renews from here
    lease.ensure_fresh()
    assert lease.generation == 2 and not lease.lost.is_set()
    # A contender that saw generation 1 expired aims at 2, and loses.
    assert lease_keys(backend) == [lease_generation_key(BID, 2)]
    info = read_lease(backend, lease_generation_key(BID, 2))
    assert info is not None and info.run_id == "run-a"


def test_a_run_taken_over_during_an_outage_stops_before_its_next_write(
    backend: StorageBackend, leases: list[Lease]
) -> None:
    hooked = Hooked(backend)
    lease = new_lease(hooked, "run-a", leases, ttl=0.3)
    lease.acquire()
    hooked.fail = True
    time.sleep(0.5)
    put_lease(backend, 2, "run-b", now_ms() + TTL_MS)  # another run took over meanwhile
    hooked.fail = False
    with pytest.raises(
        LeaseLostError, match=r"lost the lease.*run run-b on host host-9.*writes nothing more"
    ):
        lease.ensure_fresh()
    assert lease.lost.is_set()
    lease.release()  # a run that lost the lease leaves the successor's alone
    info = read_lease(backend, lease_generation_key(BID, 2))
    assert info is not None and info.run_id == "run-b" and not info.released


# -- lease.json of earlier builds -------------------------------------------------------------------------


def test_a_live_legacy_lease_json_is_honoured(backend: StorageBackend, leases: list[Lease]) -> None:
    put_lease(backend, 0, "run-old", now_ms() + TTL_MS, host="old-host")
    assert lease_is_live(backend, lease_key(BID))
    with pytest.raises(LeaseHeldError, match="run run-old on host old-host"):
        new_lease(backend, "run-b", leases).acquire()
    assert lease_keys(backend) == [legacy_lease_key(BID)]


def test_an_expired_legacy_lease_json_is_taken_over_as_generation_0(
    backend: StorageBackend, leases: list[Lease]
) -> None:
    put_lease(backend, 0, "run-old", expired())
    assert not lease_is_live(backend, lease_key(BID))
    lease = new_lease(backend, "run-b", leases)
    lease.acquire()
    assert lease.generation == 1
    assert lease_keys(backend) == [lease_generation_key(BID, 1)]  # lease.json deleted


def test_a_live_legacy_lease_json_blocks_even_below_a_released_generation(
    backend: StorageBackend, leases: list[Lease]
) -> None:
    """An earlier build knows only lease.json; while it writes, no new run may start."""
    put_lease(backend, 3, "run-new", now_ms(), released=True)
    put_lease(backend, 0, "run-old", now_ms() + TTL_MS)
    assert lease_is_live(backend, lease_key(BID))
    with pytest.raises(LeaseHeldError, match="run-old"):
        new_lease(backend, "run-b", leases).acquire()


def test_lease_info_reads_the_legacy_body() -> None:
    body = b'{"run_id": "r", "host": "h", "pid": 1, "expires_ms": 5}'
    assert LeaseInfo.from_json(body) == LeaseInfo("r", "h", 1, 5, 0, False)
    assert LeaseInfo.from_json(b"[]") is None


# -- what list, describe and validate show ----------------------------------------------------------------


def running_backup(backend: StorageBackend) -> None:
    """A backup whose last run is still ``running`` in its manifest."""
    manifest = write_backup(backend, BID)
    manifest.runs.append(RunInfo("run-2", CREATED_MS + 10_000, None, "running", "continuous", 0, 0))
    backend.put(manifest_key(BID), manifest.to_json())


def shown(backend: StorageBackend) -> tuple[list[str], str]:
    return [s.status for s in list_backups(backend)], describe_backup(backend, BID).manifest.status


def test_a_running_run_with_a_live_lease_shows_as_running(
    backend: StorageBackend, leases: list[Lease]
) -> None:
    running_backup(backend)
    lease = new_lease(backend, "run-2", leases)
    lease.acquire()
    assert shown(backend) == (["running"], "running")
    report = validate_backup(backend, BID)
    assert any(w.startswith(f"{lease.held_key}: a run holds the lease") for w in report.warnings)
    lease.release()
    assert shown(backend) == (["interrupted"], "interrupted")  # released without recording its end
    assert not any("holds the lease" in w for w in validate_backup(backend, BID).warnings)


@pytest.mark.parametrize(
    "leave",
    ["nothing", "expired", "released", "expired legacy"],
)
def test_a_running_run_without_a_live_lease_shows_as_interrupted(backend: StorageBackend, leave: str) -> None:
    running_backup(backend)
    if leave == "expired":
        put_lease(backend, 7, "run-2", now_ms() - 1)
    elif leave == "released":
        put_lease(backend, 7, "run-2", now_ms(), released=True)
    elif leave == "expired legacy":
        put_lease(backend, 0, "run-2", now_ms() - 1)
    assert shown(backend) == (["interrupted"], "interrupted")
    assert [s.backup_id for s in list_backups(backend)] == [BID]


def test_a_live_legacy_lease_json_shows_the_run_as_running(backend: StorageBackend) -> None:
    running_backup(backend)
    put_lease(backend, 0, "run-2", now_ms() + TTL_MS)
    assert shown(backend) == (["running"], "running")
    assert any(
        w.startswith(f"{legacy_lease_key(BID)}: a run holds") for w in validate_backup(backend, BID).warnings
    )


def test_lease_objects_are_never_taken_for_a_backup_or_its_files(backend: StorageBackend) -> None:
    write_backup(backend, BID)
    put_lease(backend, 2, "run-x", now_ms(), released=True)
    backend.put(lease_generation_key("only-a-lease", 1), LeaseInfo("r", "h", 1, 0, 1).to_json())
    assert [s.backup_id for s in list_backups(backend)] == [BID]
    assert [s.status for s in list_backups(backend)] == ["complete"]
    report = validate_backup(backend, BID)
    assert report.ok and not any("lease" in w for w in report.warnings)


def test_takeover_time_after_one_ttl_of_grace_or_now() -> None:
    holder = LeaseInfo("r1", "h", 1, expires_ms=1_000_000)
    assert takeover_time(holder, 30_000, now_ms=990_000).endswith(
        "take it over from 1970-01-01T00:17:10Z (one TTL later)"
    )
    assert "in 10 s (one TTL of grace)" in takeover_time(holder, 30_000, now_ms=1_020_000)
    assert takeover_time(holder, 30_000, now_ms=1_030_000) == "it may be taken over now"


@pytest.mark.parametrize(
    "body",
    [
        b'{"run_id": "r", "host": "h", "pid": "12", "expires_ms": 1}',
        b'{"run_id": 5, "host": "h", "pid": 1, "expires_ms": 1}',
        b'{"run_id": "r", "host": "h", "pid": 1, "expires_ms": 1, "released": "yes"}',
        b"[" * 100_000,
        b"\xff\xfe",
        b"[]",
    ],
    ids=["pid-string", "run-id-number", "released-string", "deep", "not-utf8", "array"],
)
def test_a_wrongly_typed_lease_is_refused_naming_the_object(body: bytes) -> None:
    from libkb.errors import FormatError

    with pytest.raises(FormatError, match=r"^b1/lease/000000000001\.json: "):
        LeaseInfo.parse(body, "b1/lease/000000000001.json")
    assert LeaseInfo.from_json(body) is None  # unreadable: it blocks no run
