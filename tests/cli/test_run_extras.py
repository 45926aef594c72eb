"""What a run does after its engine ends: ``restore.offset_report`` and ``metrics.keep_alive_seconds``."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

from libkb.cli.job import keep_serving
from libkb.cli.restore import write_offset_report
from libkb.cli.signals import StopOnSignal
from libkb.restore.engine import RestoreResult
from libkb.restore.groups import TranslatedOffset
from libkb.restore.mapping import OffsetMapping, PartitionMapping


def test_the_offset_report_holds_the_mapping_and_the_groups(tmp_path: Path) -> None:
    mapping = OffsetMapping("b1", "r1", [PartitionMapping("orders", 0, "orders-dr", 0, 0, [(100, 0, 50)])])
    result = RestoreResult("b1", "r1", "complete", mapping=mapping)
    result.group_offsets = [TranslatedOffset("billing", "orders", 0, 120, "orders-dr", 0, 20)]
    report = tmp_path / "offset-report.json"
    write_offset_report(str(report), result)
    body = json.loads(report.read_text())
    assert body["backup_id"] == "b1" and body["restore_id"] == "r1"
    assert body["mapping"] == json.loads(mapping.to_json())  # as show-offset-mapping --format json
    assert body["group_offsets"] == [
        {
            "group": "billing",
            "source": "orders[0]",
            "source_offset": 120,
            "target": "orders-dr[0]",
            "target_offset": 20,
        }
    ]
    assert [p.name for p in tmp_path.iterdir()] == ["offset-report.json"]  # no partial file left


def test_keep_serving_waits_and_a_signal_ends_the_wait() -> None:
    with StopOnSignal(lambda: None) as signals:
        started = time.monotonic()
        keep_serving(0.3, signals)
        assert time.monotonic() - started >= 0.3
        keep_serving(0, signals)  # nothing to wait for
        signal.raise_signal(signal.SIGTERM)  # handled: the first signal asks to stop
        started = time.monotonic()
        keep_serving(30, signals)
        assert time.monotonic() - started < 1
