"""``metrics.pushgateway_url``: credentials kept out of URLs, reprs and log lines; a failed push only warns.

The pushes themselves are tested against a real Pushgateway in
``integration/test_cli_metrics_push.py``.
"""

from __future__ import annotations

import logging
import socket

import pytest
import yaml
from prometheus_client import CollectorRegistry, Counter

from libkb.config import parse_config
from libkb.errors import ConfigError
from libkb.ops.push import MetricsPusher, split_credentials

JOB = """
mode: backup
backup_id: b1
source: {bootstrap_servers: ["127.0.0.1:9092"], topics: {include: [orders]}}
storage: {backend: memory}
"""


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_credentials_are_split_off_the_url() -> None:
    assert split_credentials("https://ops:p%40ss@gw.example:9091/x") == (
        "https://gw.example:9091/x",
        ("ops", "p@ss"),
    )
    assert split_credentials("http://127.0.0.1:9091") == ("http://127.0.0.1:9091", None)


def test_a_failed_push_warns_without_the_password(caplog: pytest.LogCaptureFixture) -> None:
    registry = CollectorRegistry()
    Counter("kafka_backup_records", "records", registry=registry).inc()
    url = f"http://ops:hunter2-secret@127.0.0.1:{closed_port()}"
    pusher = MetricsPusher(url, registry, grouping_key={"backup_id": "b1"}, interval_secs=0, timeout_secs=1)
    with caplog.at_level(logging.WARNING, logger="libkb.ops.push"):
        assert pusher.push() is False
        pusher.close()  # the final push fails the same way, and does not raise
    assert pusher.pushes == 0
    assert "metrics push to http://127.0.0.1:" in caplog.text
    assert "hunter2-secret" not in caplog.text + repr(pusher)


def test_the_job_file_key_is_checked_and_its_password_is_a_secret() -> None:
    data = yaml.safe_load(JOB)
    url = "https://ops:p%40ss-word@gw.example:9091"
    data["metrics"] = {"pushgateway_url": url, "push_interval_seconds": 5}
    config = parse_config(data)
    assert config.metrics.pushgateway_url == "https://ops:p%40ss-word@gw.example:9091"
    assert config.metrics.push_interval_seconds == 5
    assert {"p%40ss-word", "p@ss-word"} <= set(config.secrets())
    assert "ss-word" not in repr(config)
    data["metrics"] = {"pushgateway_url": "gw.example:9091"}
    with pytest.raises(ConfigError, match=r"metrics\.pushgateway_url"):
        parse_config(data)
