"""The storage conformance suite, shipped so any :class:`~libkb.storage.StorageBackend`
can be held to the behaviour libkb's own five backends show.

As in fsspec's ``tests/abstract``, the test bodies live in importable classes.
A backend's test module subclasses them and provides one fixture:

``make_backend(prefix: str | None = None) -> StorageBackend``
    A backend on a fresh store (bucket, container, directory) for this test;
    every call in one test returns a backend on the *same* store, so prefix
    isolation can be checked.

Optional mixins add tests for what only some services can show, each with
one more fixture: :class:`CredentialConformance` (the service checks
credentials) needs ``make_backend_with_bad_credentials``;
:class:`MissingContainerConformance` needs ``make_backend_on_missing_container``.
A ``known_secrets`` fixture may name credentials that must never show in a
``repr`` or error message. Class attributes tune sizes:
``StorageConformance.large_object_size`` and ``many_keys``.

pytest is needed only by whoever imports this package; ``import libkb.storage``
never imports it. For detailed assertion messages, call
``pytest.register_assert_rewrite("libkb.storage.testing")`` in a ``conftest.py``.
"""

from libkb.storage.testing.conformance import ConformanceBase, StorageConformance
from libkb.storage.testing.data import INVALID_KEYS, ODD_KEYS, MakeBackend
from libkb.storage.testing.optional import CredentialConformance, MissingContainerConformance

__all__ = [
    "INVALID_KEYS",
    "ODD_KEYS",
    "ConformanceBase",
    "CredentialConformance",
    "MakeBackend",
    "MissingContainerConformance",
    "StorageConformance",
]
