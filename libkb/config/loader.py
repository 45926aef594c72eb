"""Read a job config file: YAML, ``${ENV}`` expansion, validation, errors naming file and key."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from marshmallow import Schema, ValidationError, fields

import libkb.config.fixed_properties as fixed
import libkb.config.rust as rust
from libkb.config.encryption import EncryptionSchema
from libkb.config.models import BackupOptions, JobConfig, LoggingOptions, MetricsOptions, RestoreOptions
from libkb.config.schema import (
    BackupSchema,
    LoggingSchema,
    MetricsSchema,
    OffsetStorageSchema,
    RestoreSchema,
    SourceSchema,
)
from libkb.errors import ConfigError
from libkb.storage.settings import load_storage_config
from libkb.suggest import plain_message, unknown_key_message

log = logging.getLogger("libkb.config")

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_TOP_KEYS = (
    "mode",
    "backup_id",
    "source",
    "target",
    "storage",
    "backup",
    "restore",
    "metrics",
    "logging",
    "offset_storage",
    "encryption",
)
_BACKUP_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")


def expand_env(value: Any, *, path: str = "", source: str | None = None) -> Any:
    """Replace ``${VAR}`` and ``${VAR:-default}`` in every string of a parsed YAML tree."""
    if isinstance(value, str):

        def sub(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            value = os.environ.get(name)
            if default is not None and not value:
                return default  # as in a shell, ``:-`` also covers a variable set but empty
            if value is not None:
                return value
            raise ConfigError(
                f"environment variable {name} is not set (write ${{{name}:-default}} for a default)",
                key=path or None,
                source=source,
            )

        return _ENV.sub(sub, value)
    if isinstance(value, Mapping):
        return {
            k: expand_env(v, path=f"{path}.{k}" if path else str(k), source=source) for k, v in value.items()
        }
    if isinstance(value, list):
        return [expand_env(v, path=f"{path}[{i}]", source=source) for i, v in enumerate(value)]
    return value


def _section(schema: type[Schema], data: Any, key: str, source: str | None) -> Any:
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"must be a mapping, not {type(data).__name__}", key=key, source=source)
    try:
        return schema().load(dict(data))
    except ValidationError as exc:
        name, message = _first(exc.messages, key)
        if message == "Unknown field.":
            inner = name[len(key) + 1 :].split(".")
            message = unknown_key_message(inner[-1], _keys_at(schema(), inner[:-1]))
        raise ConfigError(plain_message(message), key=name, source=source) from None


def _keys_at(schema: Schema, path: list[str]) -> list[str]:
    """The keys a (nested) schema accepts at ``path`` below it."""
    for part in path:
        field = next((f for n, f in schema.fields.items() if (f.data_key or n) == part), None)
        if not isinstance(field, fields.Nested) or not isinstance(field.schema, Schema):
            return []
        schema = field.schema
    return [f.data_key or n for n, f in schema.fields.items()]


def _first(messages: Any, path: str) -> tuple[str, str]:
    if isinstance(messages, Mapping):
        for k, v in messages.items():
            return _first(v, path if k == "_schema" else f"{path}.{k}")
    if isinstance(messages, list) and messages:
        first = messages[0]
        if isinstance(first, Mapping | list):
            return _first(first, path)
        return path, str(first)
    return path, str(messages)


def parse_config(data: Any, *, source: str | None = None, log_warnings: bool = True) -> JobConfig:
    """Validate an already-parsed config mapping.

    Keys of the original tool that libkb replaces are reported in
    ``JobConfig.warnings`` and, unless ``log_warnings`` is false (the command
    line logs them once its log format is set), logged at WARNING.
    """
    if not isinstance(data, Mapping):
        raise ConfigError("the file must hold a YAML mapping (key: value lines)", source=source)
    data = expand_env(data, source=source)
    unknown = [k for k in data if k not in _TOP_KEYS]
    if unknown:
        raise ConfigError(unknown_key_message(str(unknown[0]), _TOP_KEYS), key=str(unknown[0]), source=source)
    config = _parse_sections({k: v for k, v in data.items() if v is not None}, source)
    if log_warnings:
        for line in config.warnings:
            log.warning("%s", line)
    return config


def _parse_sections(data: Mapping[str, Any], source: str | None) -> JobConfig:
    mode = data.get("mode", "backup")
    if mode not in ("backup", "restore"):
        raise ConfigError(f"{mode!r} is not a mode; use backup or restore", key="mode", source=source)
    backup_id = data.get("backup_id")
    if not isinstance(backup_id, str) or not _BACKUP_ID.match(backup_id):
        raise ConfigError(
            "required: letters, digits, '.', '_' or '-' (no '/'), at most 200 characters",
            key="backup_id",
            source=source,
        )
    if "storage" not in data:
        raise ConfigError("required: where backups are stored", key="storage", source=source)
    storage = load_storage_config(data["storage"], source=source)
    if mode == "backup" and "source" not in data:
        raise ConfigError(
            "required for mode backup: the Kafka cluster to back up", key="source", source=source
        )
    if mode == "restore" and "target" not in data:
        raise ConfigError(
            "required for mode restore: the Kafka cluster to restore into", key="target", source=source
        )
    source_options = _section(SourceSchema, data["source"], "source", source) if "source" in data else None
    target = _section(SourceSchema, data["target"], "target", source) if "target" in data else None
    backup: BackupOptions = _section(BackupSchema, data.get("backup"), "backup", source)
    restore: RestoreOptions = _section(RestoreSchema, data.get("restore"), "restore", source)
    metrics = MetricsOptions()
    if data.get("metrics") is not None:  # without the block, no server
        metrics = _section(MetricsSchema, data["metrics"], "metrics", source)
    logging_options: LoggingOptions = _section(LoggingSchema, data.get("logging"), "logging", source)
    _section(OffsetStorageSchema, data.get("offset_storage"), "offset_storage", source)
    encryption = (
        _section(EncryptionSchema, data["encryption"], "encryption", source) if "encryption" in data else None
    )
    if mode == "backup" and source_options is not None:
        consumer = {**fixed.BACKUP_CONSUMER, "isolation.level": backup.isolation_level}
        fixed.check(source_options.client_config, consumer, "source.client_config", source)
    if mode == "restore" and target is not None:
        clients = {**fixed.RESTORE_PRODUCER, **fixed.READ_BACK_CONSUMER}
        fixed.check(target.client_config, clients, "target.client_config", source)
    return JobConfig(
        mode=mode,
        backup_id=backup_id,
        storage=storage,
        source=source_options,
        target=target,
        backup=backup,
        restore=restore,
        metrics=metrics,
        logging=logging_options,
        encryption=encryption,
        path=source,
        warnings=tuple(rust.warnings(data, source=source)),
    )


class _Loader(yaml.SafeLoader):
    """YAML as ``yaml.safe_load`` reads it, plus the original tool's ``!specific`` start offsets."""


def _specific(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
    if not isinstance(node, yaml.MappingNode):
        raise yaml.constructor.ConstructorError(
            None, None, "!specific takes a mapping {topic: {partition: offset}}", node.start_mark
        )
    return {"specific": loader.construct_mapping(node, deep=True)}


_Loader.add_constructor("!specific", _specific)


def load_config(path: str | os.PathLike[str], *, log_warnings: bool = True) -> JobConfig:
    """Load and validate a job config file (see :func:`parse_config` for ``log_warnings``)."""
    return parse_config(read_config_file(path), source=str(path), log_warnings=log_warnings)


def load_section(schema: type[Schema], data: Any, key: str, source: str | None) -> Any:
    """One section of a config file through ``schema``; an error names the file, the key path and,
    for an unknown key, the closest known one. For files other than job files (validation)."""
    return _section(schema, data, key, source)


def read_config_file(path: str | os.PathLike[str]) -> Any:
    """The parsed YAML of a config file (not validated); errors name the file and the line."""
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("no such config file", source=name) from None
    except OSError as exc:
        raise ConfigError(f"cannot read the config file: {exc.strerror}", source=name) from None
    try:
        data = yaml.load(text, Loader=_Loader)  # a SafeLoader with one more tag
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"not valid YAML{where}: {problem}", source=name) from None
    return data
