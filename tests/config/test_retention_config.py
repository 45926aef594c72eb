"""``backup.retention`` in a job file: its keys, human durations, and errors that name the key."""

from __future__ import annotations

from typing import Any

import pytest

from libkb.config import JobConfig, RetentionOptions, parse_config
from libkb.errors import ConfigError

DAY = 86_400_000


def job(retention: Any) -> JobConfig:
    return parse_config(
        {
            "backup_id": "b",
            "source": {"bootstrap_servers": ["kafka:9092"]},
            "storage": {"backend": "memory"},
            "backup": {"retention": retention},
        },
        source="job.yaml",
    )


def test_retention_reads_durations_sizes_and_keeps() -> None:
    options = job({"max_age": "30d", "max_total_bytes": 10**10, "keep_segments": 3, "interval": "15m"})
    assert options.backup.retention == RetentionOptions(30 * DAY, 10**10, 3, 15 * 60_000)
    assert job({"max_total_bytes": 1}).backup.retention == RetentionOptions(None, 1, 0, 3_600_000)
    assert job(None).backup.retention is None


@pytest.mark.parametrize(
    ("retention", "says"),
    [
        ({"keep_segments": 2}, "backup.retention.max_age: give max_age (e.g. 30d) or max_total_bytes"),
        ({"max_age": 30}, "backup.retention.max_age: 30 is not a duration; write a number and a unit"),
        ({"max_age": "1d", "interval": "500ms"}, "backup.retention.interval: '500ms' is not a duration"),
        ({"max_age": "1d", "interval": "0s"}, "backup.retention.interval"),
        ({"max_age": "1d", "keep_segment": 2}, "did you mean 'keep_segments'"),
        ({"max_total_bytes": 0}, "backup.retention.max_total_bytes"),
    ],
)
def test_a_bad_retention_names_the_key(retention: dict[str, Any], says: str) -> None:
    with pytest.raises(ConfigError, match=r"job\.yaml") as bad:
        job(retention)
    assert says in str(bad.value)
