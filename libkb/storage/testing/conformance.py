"""The core of the conformance suite: behaviour every backend must show.

See :mod:`libkb.storage.testing` for how to run it against a backend.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TypeVar

import pytest

from libkb.storage.base import ObjectMetadata, StorageBackend
from libkb.storage.errors import InvalidPathError, NotFoundError
from libkb.storage.testing.data import (
    INVALID_KEYS,
    ODD_KEYS,
    MakeBackend,
    MiB,
    first_bytes,
    pattern,
    secret_values,
    sha_of_chunks,
    uneven_chunks,
)

E = TypeVar("E", bound=BaseException)


def raised_by_each(error: type[E], calls: Iterable[Callable[[], object]]) -> Iterator[E]:
    """The ``error`` each call raises, in turn; the test fails at a call raising no ``error``."""
    for call in calls:
        with pytest.raises(error) as info:
            call()
        yield info.value


class ConformanceBase:
    """What every class of the suite shares; subclasses provide ``make_backend``."""

    @pytest.fixture
    def known_secrets(self) -> Sequence[str]:
        """Credentials of the backends under test, which no repr or error message may
        show. Override to name yours; secret-looking environment variables are
        always checked."""
        return ()


class StorageConformance(ConformanceBase):
    """Behaviour every backend must show: the test bodies of the suite.

    Subclass it in a test module and provide a ``make_backend`` fixture (see
    :mod:`libkb.storage.testing`); the class attributes below tune its sizes.
    """

    #: Size of the large streamed object: several multipart parts at the usual
    #: part sizes. Lower it for a slow service; the test works at any size.
    large_object_size = 64 * MiB
    #: Keys written for the pagination test: more than one page (S3 pages hold 1000).
    many_keys = 1100

    @pytest.fixture
    def backend(self, make_backend: MakeBackend) -> Iterator[StorageBackend]:
        backend = make_backend()
        yield backend
        backend.close()

    # -- put / get -------------------------------------------------------

    def test_put_get_round_trip(self, backend: StorageBackend) -> None:
        data = bytes(range(256)) * 10
        backend.put("dir/object.bin", data)
        assert backend.get("dir/object.bin") == data

    def test_put_overwrites(self, backend: StorageBackend) -> None:
        backend.put("k", b"first")
        backend.put("k", b"second, longer")
        assert backend.get("k") == b"second, longer"
        backend.put("k", b"3")
        assert backend.get("k") == b"3"
        assert backend.size("k") == 1

    def test_empty_object(self, backend: StorageBackend) -> None:
        backend.put("empty", b"")
        assert backend.get("empty") == b""
        assert backend.size("empty") == 0
        assert backend.exists("empty")
        assert b"".join(backend.get_stream("empty")) == b""

    def test_put_accepts_bytes_like_only(self, backend: StorageBackend) -> None:
        backend.put("ba", bytearray(b"abc"))
        backend.put("mv", memoryview(b"xyz"))
        assert backend.get("ba") == b"abc"
        assert backend.get("mv") == b"xyz"
        with pytest.raises(TypeError):
            backend.put("s", "text")  # type: ignore[arg-type]

    # -- missing keys ----------------------------------------------------

    @pytest.mark.parametrize(
        "call",
        [
            lambda b: b.get("missing/key"),
            lambda b: b.size("missing/key"),
            lambda b: b.head("missing/key"),
            lambda b: b.delete("missing/key"),
            lambda b: b.copy("missing/key", "dest"),
            lambda b: b.get_stream("missing/key"),
            lambda b: b.get_range("missing/key", 0, 10),
            lambda b: b.get_range("missing/key", 0, 0),
        ],
        ids=["get", "size", "head", "delete", "copy", "get_stream", "get_range", "empty_range"],
    )
    def test_missing_key_raises_not_found(
        self, backend: StorageBackend, call: Callable[[StorageBackend], object]
    ) -> None:
        with pytest.raises(NotFoundError) as info:
            call(backend)
        assert isinstance(info.value, FileNotFoundError)
        assert "missing/key" in str(info.value)
        assert not backend.exists("dest")

    def test_exists(self, backend: StorageBackend) -> None:
        assert not backend.exists("a/b")
        backend.put("a/b", b"1")
        assert backend.exists("a/b")
        assert not backend.exists("a")  # a "directory" is not an object
        assert not backend.exists("a/b/c")

    def test_delete(self, backend: StorageBackend) -> None:
        backend.put("gone/soon", b"x")
        backend.put("gone/stays", b"y")
        backend.delete("gone/soon")
        assert not backend.exists("gone/soon")
        assert backend.list("gone/") == ["gone/stays"]
        with pytest.raises(NotFoundError):
            backend.delete("gone/soon")

    # -- metadata --------------------------------------------------------

    def test_head_and_size(self, backend: StorageBackend) -> None:
        before = int(time.time() * 1000)
        backend.put("meta", b"12345")
        meta = backend.head("meta")
        assert isinstance(meta, ObjectMetadata)
        assert meta.size == 5
        assert backend.size("meta") == 5
        # Services round last-modified to the second; allow clock skew.
        assert before - 5_000 <= meta.last_modified <= int(time.time() * 1000) + 5_000
        assert meta.e_tag is None or (isinstance(meta.e_tag, str) and meta.e_tag)

    # -- copy ------------------------------------------------------------

    def test_copy(self, backend: StorageBackend) -> None:
        backend.put("src/obj", b"payload")
        backend.put("dst/obj", b"old")
        backend.copy("src/obj", "dst/obj")
        assert backend.get("dst/obj") == b"payload"
        assert backend.get("src/obj") == b"payload"
        backend.copy("src/obj", "other/deep/copy")
        assert backend.get("other/deep/copy") == b"payload"

    def test_copy_odd_keys(self, backend: StorageBackend) -> None:
        src, dest = ODD_KEYS[1], ODD_KEYS[3]
        backend.put(src, b"odd")
        backend.copy(src, dest)
        assert backend.get(dest) == b"odd"

    # -- listing ---------------------------------------------------------

    def test_list_is_string_prefix_recursive_sorted(self, backend: StorageBackend) -> None:
        keys = ["prod/a", "prod/sub/b", "prod-2/x", "production", "pro", "other/prod", "z"]
        for k in keys:
            backend.put(k, b"")
        assert backend.list("prod") == sorted(
            ["prod/a", "prod/sub/b", "prod-2/x", "production"], key=lambda k: k.encode()
        )
        assert backend.list("prod/") == ["prod/a", "prod/sub/b"]
        assert backend.list("prod/sub/") == ["prod/sub/b"]
        assert backend.list("nothing-here") == []
        assert backend.list() == sorted(keys, key=lambda k: k.encode())
        assert backend.list("") == backend.list()

    def test_list_orders_by_utf8_bytes(self, backend: StorageBackend) -> None:
        keys = ["a/b", "a-c", "a0", "a~", "aé", "a中", "A", "a.b/c"]
        for k in keys:
            backend.put(k, b"")
        assert backend.list() == sorted(keys, key=lambda k: k.encode("utf-8"))

    def test_iter_keys_is_lazy_and_pages(self, backend: StorageBackend) -> None:
        names = [f"many/{i:05d}" for i in range(self.many_keys)]
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda k: backend.put(k, b""), names))
        it = backend.iter_keys("many/")
        assert iter(it) is it  # an iterator, not a materialised list
        first = next(it)
        assert sorted([first, *it]) == names

    def test_list_rejects_bad_prefix(self, backend: StorageBackend) -> None:
        for prefix in ["/abs", "a//b", "a/../b", "a\x00"]:
            with pytest.raises(InvalidPathError):
                backend.list(prefix)

    # -- prefixes ----------------------------------------------------------

    def test_prefix_isolation(self, make_backend: MakeBackend) -> None:
        one = make_backend(prefix="tenant")
        two = make_backend(prefix="tenant-2")
        three = make_backend(prefix="tenant/nested")
        root = make_backend()
        one.put("k", b"one")
        two.put("k", b"two")
        three.put("k", b"three")
        assert one.get("k") == b"one"
        assert two.get("k") == b"two"
        assert three.get("k") == b"three"
        assert two.list() == ["k"]
        assert three.list() == ["k"]
        # A parent prefix sees the nested one's objects as its own keys; a
        # sibling with a common string prefix never does.
        assert one.list() == ["k", "nested/k"]
        assert root.list() == ["tenant-2/k", "tenant/k", "tenant/nested/k"]
        two.delete("k")
        assert one.get("k") == b"one"
        assert not two.exists("k")

    def test_prefix_with_slashes_is_normalised(self, make_backend: MakeBackend) -> None:
        a = make_backend(prefix="/team/a/")
        b = make_backend(prefix="team/a")
        a.put("x", b"1")
        assert b.get("x") == b"1"

    # -- keys --------------------------------------------------------------

    @pytest.mark.parametrize("key", ODD_KEYS, ids=range(len(ODD_KEYS)))
    def test_odd_keys_round_trip(self, backend: StorageBackend, key: str) -> None:
        backend.put(key, key.encode())
        assert backend.get(key) == key.encode()
        assert backend.exists(key)
        assert backend.list(key) == [key]
        assert backend.head(key).size == len(key.encode())
        backend.delete(key)
        assert not backend.exists(key)

    @pytest.mark.parametrize("key", INVALID_KEYS, ids=range(len(INVALID_KEYS)))
    def test_invalid_keys_rejected_before_io(self, backend: StorageBackend, key: str) -> None:
        calls = (
            lambda: backend.put(key, b"x"),
            lambda: backend.get(key),
            lambda: backend.exists(key),
            lambda: backend.delete(key),
            lambda: backend.put_stream(key, [b"x"]),
            lambda: backend.copy("fine", key),
            lambda: backend.put_if_absent(key, b"x"),
        )
        for error in raised_by_each(InvalidPathError, calls):
            assert isinstance(error, ValueError)
        assert backend.list() == []

    # -- streaming ---------------------------------------------------------

    def test_put_stream_small(self, backend: StorageBackend) -> None:
        backend.put_stream("s", iter([b"ab", b"", b"cd"]))
        assert backend.get("s") == b"abcd"
        backend.put_stream("s0", iter([]))
        assert backend.get("s0") == b""

    def test_large_streamed_object(self, backend: StorageBackend) -> None:
        size = self.large_object_size + 12_345
        expected, n = sha_of_chunks(uneven_chunks(size, seed=1))
        assert n == size
        backend.put_stream("large/object", uneven_chunks(size, seed=1))
        assert backend.size("large/object") == size
        got, n = sha_of_chunks(backend.get_stream("large/object", chunk_size=4 * MiB))
        assert (got, n) == (expected, size)
        # A range across the first part boundaries matches the source bytes.
        end = min(33 * MiB + 7, size)
        start = min(8 * MiB - 100, end)
        source = first_bytes(uneven_chunks(size, seed=1), end)
        assert backend.get_range("large/object", start, end) == source[start:end]
        assert hashlib.sha256(backend.get("large/object")).hexdigest() == expected

    def test_failed_stream_leaves_no_object(self, backend: StorageBackend) -> None:
        class Boom(RuntimeError):
            pass

        def failing(limit: int) -> Iterator[bytes]:
            yield from uneven_chunks(limit)
            raise Boom("source failed")

        with pytest.raises(Boom):
            backend.put_stream("half/new", failing(40 * MiB))
        assert not backend.exists("half/new")
        assert backend.list("half/") == []

        backend.put("half/old", b"old content")
        with pytest.raises(Boom):
            backend.put_stream("half/old", failing(40 * MiB))
        assert backend.get("half/old") == b"old content"
        with pytest.raises(Boom):
            backend.put_stream("half/old", failing(10))
        assert backend.get("half/old") == b"old content"

    def test_get_stream_chunks(self, backend: StorageBackend) -> None:
        data = pattern(3 * MiB + 5)
        backend.put("chunky", data)
        chunks = list(backend.get_stream("chunky", chunk_size=MiB))
        assert b"".join(chunks) == data
        assert all(len(c) <= MiB for c in chunks)

    def test_get_range(self, backend: StorageBackend) -> None:
        data = bytes(range(256)) * 4
        backend.put("r", data)
        assert backend.get_range("r", 0, 10) == data[:10]
        assert backend.get_range("r", 100, 356) == data[100:356]
        assert backend.get_range("r", 1000, 5000) == data[1000:]
        assert backend.get_range("r", 7, 7) == b""
        assert backend.get_range("r", 1024, 2000) == b""
        assert backend.get_range("r", 5000, 6000) == b""
        with pytest.raises(ValueError):
            backend.get_range("r", 10, 5)
        with pytest.raises(ValueError):
            backend.get_range("r", -1, 5)

    # -- create-only writes -----------------------------------------------

    def test_put_if_absent(self, backend: StorageBackend) -> None:
        assert backend.put_if_absent("lease", b"first") is True
        assert backend.put_if_absent("lease", b"second") is False
        assert backend.get("lease") == b"first"
        backend.delete("lease")
        assert backend.put_if_absent("lease", b"third") is True
        assert backend.get("lease") == b"third"

    def test_put_if_absent_race_has_one_winner(self, backend: StorageBackend) -> None:
        contenders = 8
        barrier = threading.Barrier(contenders)
        results: dict[int, bool] = {}

        def contend(i: int) -> None:
            barrier.wait()
            results[i] = backend.put_if_absent("race/lease", f"owner-{i}".encode())

        threads = [threading.Thread(target=contend, args=(i,)) for i in range(contenders)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        winners = [i for i, won in results.items() if won]
        assert len(results) == contenders
        assert len(winners) == 1
        assert backend.get("race/lease") == f"owner-{winners[0]}".encode()

    # -- hygiene -----------------------------------------------------------

    def test_repr_has_no_secrets(self, backend: StorageBackend, known_secrets: Sequence[str]) -> None:
        text = repr(backend)
        for secret in secret_values(known_secrets):
            assert secret not in text
