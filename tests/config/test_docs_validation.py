"""docs/config.rst lists every key of the validation file, so none is undocumented."""

from __future__ import annotations

from pathlib import Path

import pytest
from marshmallow import Schema, fields

from libkb.config import validation

DOC = (Path(__file__).resolve().parents[2] / "docs" / "config.rst").read_text(encoding="utf-8")


def keys(cls: type[Schema], prefix: str) -> list[str]:
    out = []
    for name, field in cls().fields.items():
        key = prefix + (field.data_key or name)
        if isinstance(field, fields.Nested) and isinstance(field.schema, Schema):
            out += keys(type(field.schema), key + ".")
        elif isinstance(field, fields.List) and isinstance(field.inner, fields.Nested):
            out.append(key)  # a list of mappings: documented as one key
        else:
            out.append(key)
    return out


@pytest.mark.parametrize(
    "key",
    [
        *validation._KEYS,
        *keys(validation._Checks, "checks."),
        *keys(validation._Evidence, "evidence."),
        *keys(validation._Notifications, "notifications."),
    ],
)
def test_every_validation_key_is_documented(key: str) -> None:
    assert f"``{key}``" in DOC, f"docs/config.rst does not describe {key}"
