"""Job configuration: YAML files validated into typed settings."""

from libkb.config.loader import expand_env, load_config, parse_config
from libkb.config.models import (
    BackupOptions,
    ConnectionOptions,
    JobConfig,
    KafkaSecurity,
    LoggingOptions,
    MetricsOptions,
    RestoreOptions,
    RetentionOptions,
    SourceOptions,
    TopicRepartitioning,
    TopicSelection,
)

__all__ = [
    "BackupOptions",
    "ConnectionOptions",
    "JobConfig",
    "KafkaSecurity",
    "LoggingOptions",
    "MetricsOptions",
    "RestoreOptions",
    "RetentionOptions",
    "SourceOptions",
    "TopicRepartitioning",
    "TopicSelection",
    "expand_env",
    "load_config",
    "parse_config",
]
