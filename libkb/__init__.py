"""libkb: Kafka backup and restore for Python."""

__version__ = "0.1.0"
