"""Azure ``encryption_scope`` against Azurite.

Azurite accepts the header (its shared-key check covers it, so the signing is
right) but does not record a scope, so what it cannot check is a wiring test
of the exact requests that carry ``x-ms-encryption-scope``: every write of a
blob (Put Blob, Put Block, Put Block List, Copy Blob), no read, no container
operation. Not run against real Azure.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from integration.services.endpoints import AzureContainer
from integration.storage.configs import azure_config
from libkb.storage import create_backend_from_config
from libkb.storage.drivers.common.transport import ReleaseBodyMixin
from libkb.storage.settings import TransferConfig

MiB = 1024 * 1024
SCOPE = "libkb-scope"


def test_every_blob_write_carries_the_encryption_scope_and_nothing_else_does(
    azurite_container: AzureContainer, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[tuple[str, str, dict[str, Any], str | None]] = []
    passthrough = ReleaseBodyMixin.request

    def record(self: Any, action: str, *args: Any, **kwargs: Any) -> Any:
        params = dict(kwargs.get("params") or {})
        scope = (kwargs.get("headers") or {}).get("x-ms-encryption-scope")
        sent.append((kwargs.get("method", "GET"), action, params, scope))
        return passthrough(self, action, *args, **kwargs)

    monkeypatch.setattr(ReleaseBodyMixin, "request", record)
    transfer = TransferConfig(part_size=4 * MiB, single_put_threshold=4 * MiB)
    config = azure_config(azurite_container, encryption_scope=SCOPE, transfer=transfer)
    small, big = os.urandom(1000), os.urandom(9 * MiB)
    with create_backend_from_config(config) as store:
        store.put("small", small)
        store.put_stream("big", iter([big[i : i + MiB] for i in range(0, len(big), MiB)]))
        store.copy("small", "copy")
        assert store.get("small") == small == store.get("copy") and store.get("big") == big
        assert store.list("") == ["big", "copy", "small"]

    writes = [s for s in sent if s[0] == "PUT" and "restype" not in s[2]]
    kinds = {s[2].get("comp", "copy" if s[1].endswith("/copy") else "blob") for s in writes}
    assert kinds == {"blob", "block", "blocklist", "copy"}
    assert all(scope == SCOPE for *_, scope in writes)
    assert all(scope is None for s in sent if s not in writes for scope in [s[3]])
