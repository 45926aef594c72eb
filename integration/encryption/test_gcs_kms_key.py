"""GCS ``kms_key_name`` against fake-gcs-server.

What the emulator checks: every upload and copy still works with the key
named. What it cannot (it has no KMS and may not keep the key name), a wiring
test pins: the exact requests that name the key (``kmsKeyName`` on media,
multipart and resumable uploads, ``destinationKmsKeyName`` on ``rewriteTo``)
and that no other request does. Not run against real GCS.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from integration.services.endpoints import GcsBucket
from integration.storage.configs import gcs_config
from libkb.storage import create_backend_from_config
from libkb.storage.drivers.common.transport import ReleaseBodyMixin
from libkb.storage.settings import TransferConfig

MiB = 1024 * 1024
KEY = "projects/p/locations/europe-west1/keyRings/libkb/cryptoKeys/backups"


def test_every_object_write_names_the_kms_key_and_nothing_else_does(
    gcs_bucket: GcsBucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[tuple[str, str, dict[str, Any]]] = []
    passthrough = ReleaseBodyMixin.request

    def record(self: Any, action: str, params: Any = None, *args: Any, **kwargs: Any) -> Any:
        sent.append((kwargs.get("method", "GET"), action, dict(params or {})))
        return passthrough(self, action, params, *args, **kwargs)

    monkeypatch.setattr(ReleaseBodyMixin, "request", record)
    transfer = TransferConfig(part_size=5 * MiB, single_put_threshold=5 * MiB)
    config = gcs_config(gcs_bucket, kms_key_name=KEY, transfer=transfer)
    small, big = os.urandom(1000), os.urandom(11 * MiB)
    with create_backend_from_config(config) as store:
        store.put("small", small)
        assert store.put_if_absent("once", b"1")
        store.put_stream("big", iter([big[i : i + MiB] for i in range(0, len(big), MiB)]))
        store.copy("small", "copy")
        assert store.get("small") == small == store.get("copy") and store.get("big") == big

    named = [(m, a, p) for m, a, p in sent if "kmsKeyName" in p or "destinationKmsKeyName" in p]
    assert {p.get("uploadType", "rewrite") for _, _, p in named} == {
        "media",
        "multipart",
        "resumable",
        "rewrite",
    }
    for _, action, params in named:
        assert params.get("kmsKeyName", params.get("destinationKmsKeyName")) == KEY
        assert ("/rewriteTo/" in action) == ("destinationKmsKeyName" in params)
    assert all(m == "POST" for m, _, _ in named)
    assert len(named) == 4  # one media, one multipart, one resumable start, one rewrite
