"""Job configuration: YAML files validated into typed settings."""

from libkb.config.loader import expand_env, load_config, parse_config
from libkb.config.models import (
    BackupOptions,
    JobConfig,
    KafkaSecurity,
    MetricsOptions,
    RestoreOptions,
    SourceOptions,
    TopicSelection,
)

__all__ = [
    "BackupOptions",
    "JobConfig",
    "KafkaSecurity",
    "MetricsOptions",
    "RestoreOptions",
    "SourceOptions",
    "TopicSelection",
    "expand_env",
    "load_config",
    "parse_config",
]
