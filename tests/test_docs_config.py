"""docs/config.rst lists every key a job file accepts, so none is undocumented."""

from __future__ import annotations

from pathlib import Path

import pytest
from marshmallow import Schema, fields

from libkb.config import schema
from libkb.config.encryption import EncryptionSchema
from libkb.config.loader import _TOP_KEYS

DOC = (Path(__file__).resolve().parents[1] / "docs" / "config.rst").read_text(encoding="utf-8")
ENCRYPTION_DOC = (Path(__file__).resolve().parents[1] / "docs" / "encryption.rst").read_text(encoding="utf-8")


def keys(cls: type[Schema], prefix: str = "") -> list[str]:
    """The keys of a section; nested sections are listed by their own keys."""
    return [
        prefix + (field.data_key or name)
        for name, field in cls().fields.items()
        if not isinstance(field, fields.Nested)
    ]


@pytest.mark.parametrize(
    "key",
    [
        *_TOP_KEYS,
        *keys(schema.SourceSchema),
        *keys(schema.TopicsSchema, "topics."),
        *keys(schema.SecuritySchema, "security."),
        *keys(schema.ConnectionSchema, "connection."),
        *keys(schema.BackupSchema),
        *keys(schema.RetentionSchema, "retention."),
        *keys(schema.RestoreSchema),
        *keys(schema.MetricsSchema),
        *keys(schema.LoggingSchema),
        *keys(schema.OffsetStorageSchema),
    ],
)
def test_every_key_is_documented(key: str) -> None:
    assert f"``{key}``" in DOC, f"docs/config.rst does not describe {key}"


@pytest.mark.parametrize("key", keys(EncryptionSchema))
def test_every_encryption_key_is_documented(key: str) -> None:
    assert f"``{key}``" in ENCRYPTION_DOC, f"docs/encryption.rst does not describe {key}"
