"""Parallel reset: every partition's answer counted, passing refusals retried, the rest reported."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import cast

from confluent_kafka import KafkaError
from confluent_kafka.admin import AdminClient

from libkb.kafka.groups import GroupAdmin
from libkb.kafka.types import CommittedOffset
from libkb.offsets import reset_in_parallel

TP = tuple[str, int]


class ScriptedGroups(GroupAdmin):
    """Answers each commit from a script of per-partition errors (None: accepted), then accepts."""

    def __init__(self, script: dict[str, list[dict[TP, int]]]) -> None:
        super().__init__(cast(AdminClient, None), timeout=1)
        self.script = script
        self.sent: list[tuple[str, list[TP]]] = []
        self.lock = threading.Lock()

    def commit(self, group: str, offsets: Mapping[TP, CommittedOffset]) -> dict[TP, KafkaError]:
        with self.lock:
            self.sent.append((group, sorted(offsets)))
            answers = self.script.get(group, [])
            answer = answers.pop(0) if answers else {}
        return {tp: KafkaError(code) for tp, code in answer.items() if tp in offsets}


def offsets(*partitions: int) -> dict[TP, CommittedOffset]:
    return {("t", p): CommittedOffset(p * 10) for p in partitions}


def test_all_groups_reset_and_reported() -> None:
    groups = ScriptedGroups({})
    report = reset_in_parallel(groups, {"a": offsets(0, 1), "b": offsets(2), "empty": {}}, max_concurrent=4)
    assert (report.status, report.total_groups, report.successful_groups) == ("success", 2, 2)
    assert (report.total_offsets_reset, report.total_offsets_failed, report.performance.total_retries) == (
        3,
        0,
        0,
    )
    assert report.performance.max_concurrency == 2
    assert sorted(g for g, _ in groups.sent) == ["a", "b"]


def test_passing_refusals_are_retried_for_those_partitions_only() -> None:
    loading = KafkaError.COORDINATOR_LOAD_IN_PROGRESS
    groups = ScriptedGroups({"a": [{("t", 1): loading}, {("t", 1): KafkaError.NOT_COORDINATOR}]})
    report = reset_in_parallel(groups, {"a": offsets(0, 1)}, backoff_secs=0.001)
    assert report.status == "success" and report.total_offsets_reset == 2
    assert groups.sent == [("a", [("t", 0), ("t", 1)]), ("a", [("t", 1)]), ("a", [("t", 1)])]
    assert report.group_outcomes[0].retry_attempts == 2


def test_final_refusals_are_reported_with_kafkas_reason() -> None:
    groups = ScriptedGroups({"busy": [{("t", 0): KafkaError.UNKNOWN_MEMBER_ID}], "gone": [{("t", 5): 3}]})
    report = reset_in_parallel(groups, {"busy": offsets(0, 1), "gone": offsets(5), "fine": offsets(7)})
    assert (report.status, report.failed_groups, report.total_offsets_failed) == ("partial_success", 2, 2)
    busy = next(o for o in report.group_outcomes if o.group_id == "busy")
    assert (busy.partitions_reset, busy.partitions_failed, busy.retry_attempts) == (1, 1, 0)
    assert busy.errors[0].error_code == KafkaError.UNKNOWN_MEMBER_ID
    assert "the group has active members; stop its consumers" in busy.errors[0].message
    gone = next(o for o in report.group_outcomes if o.group_id == "gone")
    assert "the topic or partition does not exist on this cluster" in gone.errors[0].message


def test_retries_run_out() -> None:
    timeout = KafkaError.REQUEST_TIMED_OUT
    groups = ScriptedGroups({"a": [{("t", 0): timeout}] * 5})
    report = reset_in_parallel(groups, {"a": offsets(0)}, max_retries=2, backoff_secs=0.001)
    assert report.status == "failed" and len(groups.sent) == 3
    assert report.group_outcomes[0].errors[0].error_code == timeout
