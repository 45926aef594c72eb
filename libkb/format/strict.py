"""Stored JSON read without trusting it: a wrongly typed field is refused, never coerced or let through.

``int("7")`` would accept a string where a writer puts a number, and a
dataclass accepts anything its fields are given: a manifest whose
``partitions`` is ``"3"`` or ``true`` would be read and fail much later, far
from the object that holds it. :func:`load_object` parses an object's bytes
and :func:`build` checks each field against the dataclass's annotations
before constructing it; both raise :class:`~libkb.errors.FormatError` naming
the object and the field (``index.json: segments[2].end_offset: expected an
integer, found str``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import types
import typing
from collections.abc import Iterator, Mapping
from functools import cache
from typing import Any, TypeVar

from libkb.errors import FormatError

T = TypeVar("T")


def load_object(data: bytes, name: str, what: str = "object") -> dict[str, Any]:
    """The JSON object ``data`` holds; FormatError naming ``name`` if it is not one."""
    try:
        body = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FormatError(f"{name}: not valid JSON ({exc})") from None
    except RecursionError:
        raise FormatError(f"{name}: not a libkb {what} (JSON nested too deeply)") from None
    if not isinstance(body, dict):
        raise FormatError(f"{name}: not a libkb {what} (a JSON {type(body).__name__}, not an object)")
    return body


@contextlib.contextmanager
def malformed(name: str, what: str) -> Iterator[None]:
    """Word a field's FormatError as ``{name}: malformed {what}: {field}: ...`` (the object's kind first)."""
    try:
        yield
    except FormatError as exc:
        raise FormatError(f"{name}: malformed {what}: {str(exc).removeprefix(name + ': ')}") from None


def field_error(name: str, path: str, expected: str, value: object) -> FormatError:
    return FormatError(f"{name}: {path}: expected {expected}, found {type(value).__name__}")


def integer(value: object, name: str, path: str) -> int:
    """``value`` if it is a JSON integer (not a bool, a float or a string)."""
    if type(value) is not int:
        raise field_error(name, path, "an integer", value)
    return value


def string(value: object, name: str, path: str) -> str:
    if type(value) is not str:
        raise field_error(name, path, "a string", value)
    return value


def mapping(value: object, name: str, path: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise field_error(name, path, "an object", value)
    return value


def array(value: object, name: str, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise field_error(name, path, "an array", value)
    return value


def partition_key(text: str, name: str, path: str) -> int:
    """A partition number stored as a JSON object key: decimal digits only (not ``" 1"`` or ``"+1"``)."""
    if not (text.isascii() and text.isdigit()) or len(text) > 10:
        raise FormatError(f"{name}: {path}: {text!r} is not a partition number")
    return int(text)


def partition_offsets(value: object, name: str, path: str) -> dict[int, int]:
    """``{"partition": offset}`` as ``{partition: offset}``, every key and value checked."""
    return {
        partition_key(p, name, path): integer(o, name, f"{path}.{p}")
        for p, o in mapping(value, name, path).items()
    }


def build(cls: type[T], body: object, name: str, path: str) -> T:
    """``cls(**body)`` once every field of ``body`` has its annotated type and none is unknown or missing."""
    fields = mapping(body, name, path)
    hints = _hints(cls)  # type: ignore[arg-type]
    for key, value in fields.items():
        if key not in hints:
            raise FormatError(f"{name}: {path}: unknown field {key!r}")
        _check(value, hints[key], name, f"{path}.{key}")
    known = dataclasses.fields(cls)  # type: ignore[arg-type]
    missing = [f.name for f in known if f.name not in fields and _required(f)]
    if missing:
        raise FormatError(f"{name}: {path}: missing {', '.join(missing)}")
    return cls(**fields)


def _required(f: dataclasses.Field[Any]) -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


_NAMES = {int: "an integer", str: "a string", bool: "true or false", type(None): "null"}


def _check(value: object, hint: Any, name: str, path: str) -> None:
    """``value`` matches ``hint``: int, str, bool, None, a union of those, or dict/list of them."""
    origin = typing.get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        options = typing.get_args(hint)
        if not any(type(value) is option for option in options if option in _NAMES):
            expected = " or ".join(_NAMES.get(o, str(o)) for o in options)
            raise field_error(name, path, expected, value)
        return
    if origin is dict:
        key_type, value_type = typing.get_args(hint)
        for key, item in mapping(value, name, path).items():
            _check(key, key_type, name, f"{path} key")
            _check(item, value_type, name, f"{path}.{key}")
        return
    if origin is list:
        (item_type,) = typing.get_args(hint)
        for i, item in enumerate(array(value, name, path)):
            _check(item, item_type, name, f"{path}[{i}]")
        return
    if type(value) is not hint:
        raise field_error(name, path, _NAMES.get(hint, getattr(hint, "__name__", str(hint))), value)
