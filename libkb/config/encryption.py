"""``encryption``: the key-encryption keys of client-side envelope encryption (docs/encryption.rst).

Why its own section, at the top of the job file: backup writes with the
current key, and restore, ``validate --deep`` and ``rewrap`` read with the
current and the old ones, so every job file that touches an encrypted backup
names the same keys the same way. The config holds where a key is (an
environment variable, a file, a KMS key id), never the key itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from marshmallow import ValidationError, fields, post_load, validate

from libkb.config.fields import Strict

#: Where a key-encryption key lives: a local key (env/file), or a cloud KMS.
KMS_KINDS = ("aws", "azure", "gcp")


@dataclass(frozen=True, slots=True)
class KeySource:
    """Where one key-encryption key comes from (never the key's bytes)."""

    #: Recorded with every data key it wraps: a local key's name, or the KMS key's id/ARN/URL/name.
    key_id: str
    #: ``local``, or a KMS: ``aws``, ``azure``, ``gcp``.
    kind: str = "local"
    #: A local key: the environment variable holding it (base64 of 32 bytes) ...
    env: str | None = None
    #: ... or the file holding it (32 bytes, or their base64: a Kubernetes Secret mounted as a file).
    file: str | None = None
    #: AWS KMS: its region and, for a KMS-compatible server, its endpoint URL.
    region: str | None = None
    endpoint_url: str | None = None


@dataclass(frozen=True, slots=True)
class EncryptionOptions:
    """The key new segments are encrypted with, and older keys that still read older segments."""

    key: KeySource
    old_keys: tuple[KeySource, ...] = ()

    @property
    def keys(self) -> tuple[KeySource, ...]:
        return (self.key, *self.old_keys)


class KeySchema(Strict):
    key_id = fields.String(required=True, validate=validate.Length(min=1, max=2048))
    key_env = fields.String(
        validate=validate.Regexp(r"^[A-Za-z_][A-Za-z0-9_]*$", error="not a variable name")
    )
    key_file = fields.String(validate=validate.Length(min=1))
    kms = fields.String(validate=validate.OneOf(KMS_KINDS))
    region = fields.String(validate=validate.Length(min=1))
    endpoint_url = fields.Url(require_tld=False, schemes={"http", "https"})

    @post_load
    def make(self, data: dict[str, Any], **_: Any) -> KeySource:
        given = [k for k in ("key_env", "key_file", "kms") if k in data]
        if len(given) != 1:
            raise ValidationError(
                "give exactly one of key_env (a variable holding the key in base64), key_file "
                "or kms (aws, azure, gcp)",
                given[1] if len(given) > 1 else "key_id",
            )
        kind = data.get("kms", "local")
        for cloud_only in ("region", "endpoint_url"):
            if cloud_only in data and kind != "aws":
                raise ValidationError("applies to kms: aws only", cloud_only)
        return KeySource(
            key_id=data["key_id"],
            kind=kind,
            env=data.get("key_env"),
            file=data.get("key_file"),
            region=data.get("region"),
            endpoint_url=data.get("endpoint_url"),
        )


class EncryptionSchema(KeySchema):
    old_keys = fields.List(fields.Nested(KeySchema))

    @post_load
    def make(self, data: dict[str, Any], **kwargs: Any) -> Any:
        old = tuple(data.pop("old_keys", ()))
        current = super().make(data, **kwargs)
        ids = [k.key_id for k in (current, *old)]
        duplicate = next((i for i in ids if ids.count(i) > 1), None)
        if duplicate is not None:
            raise ValidationError(f"key id {duplicate!r} is given twice", "old_keys")
        return EncryptionOptions(current, old)
