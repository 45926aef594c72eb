"""Load a job file for a command: its ``logging`` block first, then what loading had to say."""

from __future__ import annotations

import logging

from libkb.cli.logs import apply_job_logging, first_time
from libkb.config import JobConfig, load_config

log = logging.getLogger("libkb.config")


def load_job(path: str) -> JobConfig:
    """The job file at ``path``, with its log format, level and secrets in force.

    Warnings about the original tool's replaced keys are logged after the
    file's format is applied, so a ``format: json`` file gets them as JSON.
    """
    config = load_config(path, log_warnings=False)
    apply_job_logging(config.logging, backup_id=config.backup_id, secrets=config.secrets())
    for line in config.warnings:
        if first_time(line):
            log.warning("%s", line)
    return config
