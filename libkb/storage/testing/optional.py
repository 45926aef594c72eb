"""Optional parts of the conformance suite, for what only some backends can show.

Mix them into the test class next to
:class:`~libkb.storage.testing.conformance.StorageConformance`; each needs one
more fixture.
"""

from __future__ import annotations

from collections.abc import Sequence

from libkb.storage.errors import ContainerNotFoundError, PermissionDeniedError
from libkb.storage.testing.conformance import ConformanceBase, raised_by_each
from libkb.storage.testing.data import MakeBackend, secret_values


class CredentialConformance(ConformanceBase):
    """For services that check credentials: wrong ones are PermissionDeniedError.

    Needs a ``make_backend_with_bad_credentials()`` fixture: a backend on the
    same store whose credentials the service refuses.
    """

    def test_bad_credentials_are_permission_denied(
        self,
        make_backend_with_bad_credentials: MakeBackend,
        make_backend: MakeBackend,
        known_secrets: Sequence[str],
    ) -> None:
        make_backend().put("guarded", b"x")
        bad = make_backend_with_bad_credentials()
        calls = (
            lambda: bad.get("guarded"),
            lambda: bad.put("new", b"x"),
            lambda: bad.list(),
            lambda: bad.head("guarded"),
            lambda: bad.exists("guarded"),
        )
        for error in raised_by_each(PermissionDeniedError, calls):
            assert isinstance(error, PermissionError)
            for secret in secret_values(known_secrets):
                assert secret not in str(error)
        # Access-denied answers prove the service is up: the breaker stays closed.
        assert make_backend().get("guarded") == b"x"


class MissingContainerConformance(ConformanceBase):
    """A missing bucket/container is a clear setup error, never "no such key".

    Needs a ``make_backend_on_missing_container()`` fixture: a backend whose
    bucket/container does not exist.
    """

    def test_missing_container(self, make_backend_on_missing_container: MakeBackend) -> None:
        """Every operation, reads and writes, small and streamed: the container is named as missing."""
        backend = make_backend_on_missing_container()
        big = b"x" * (backend.stream_hold_bytes + 1)  # past one request: the multipart/block path
        calls = (
            lambda: backend.get("k"),
            lambda: backend.put("k", b"x"),
            lambda: backend.put("big", big),
            lambda: backend.put_stream("k", [b"x", b"y"]),
            lambda: backend.put_stream("big", [big, b"y"]),
            lambda: backend.put_if_absent("k", b"x"),
            lambda: backend.list(),
            lambda: list(backend.iter_keys("p/")),
            lambda: backend.exists("k"),
            lambda: backend.head("k"),
            lambda: backend.size("k"),
            lambda: backend.get_range("k", 0, 1),
            lambda: list(backend.get_stream("k")),
            lambda: backend.delete("k"),
            lambda: backend.copy("k", "k2"),
        )
        for i, error in enumerate(raised_by_each(ContainerNotFoundError, calls)):
            assert "does not exist" in str(error), (i, error)
