"""The original tool's legacy flat ``storage:`` block, kept so old files load.

Every key of every backend is optional there and may be ``null``;
:meth:`StorageConfig.to_backend_config` turns such a block into the tagged
settings of :mod:`libkb.storage.settings`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from libkb.errors import ConfigError
from libkb.storage.config import BACKENDS, backend_keys, canonical_backend
from libkb.storage.settings import BackendConfig, load_storage_config


@dataclass(frozen=True)
class StorageConfig:
    """The original tool's legacy flat ``storage:`` block: every key optional, nulls allowed."""

    backend: str | None = None
    bucket: str | None = None
    region: str | None = None
    endpoint: str | None = None
    access_key: str | None = None
    secret_key: str | None = None
    prefix: str | None = None
    path: str | None = None
    path_style: bool | None = None
    allow_http: bool | None = None
    account_name: str | None = None
    container_name: str | None = None
    account_key: str | None = None
    service_account_path: str | None = None

    def __repr__(self) -> str:
        shown = {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if getattr(self, f.name) is not None and f.name not in ("secret_key", "account_key")
        }
        return f"StorageConfig({', '.join(f'{k}={v!r}' for k, v in shown.items())})"

    @classmethod
    def from_dict(cls, mapping: Mapping[str, Any], *, source: str | None = None) -> StorageConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(mapping) - known)
        if unknown:
            raise ConfigError(
                f"unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(known))}",
                key="storage",
                source=source,
            )
        return cls(**dict(mapping))

    def to_backend_config(self, *, source: str | None = None) -> BackendConfig:
        """The tagged config this flat block means (nulls dropped, backend inferred)."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        backend = data.pop("backend") or ("filesystem" if self.path else None)
        if backend is None:
            raise ConfigError(
                f"missing; choose one of: {', '.join(BACKENDS)}",
                key="storage.backend",
                source=source,
            )
        backend = canonical_backend(backend)
        allowed = backend_keys(backend)
        kept = {k: v for k, v in data.items() if v is not None and k in allowed}
        stray = sorted(k for k, v in data.items() if v is not None and k not in allowed)
        if stray:
            raise ConfigError(
                f"key(s) {', '.join(stray)} do not apply to backend {backend!r}",
                key="storage",
                source=source,
            )
        return load_storage_config({"backend": backend, **kept}, source=source)
