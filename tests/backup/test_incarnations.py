"""Topic identity at backup: which stored topic each Kafka topic goes to, and when a run must stop. Pure."""

from __future__ import annotations

import pytest

from libkb.backup.incarnations import TopicRecreatedError, choose_incarnations, recreated_since
from libkb.format.models import Manifest, TopicInfo

A, B, C = "AAAAAAAAAAEAAAAAAAAAAg", "BBBBBBBBBBEAAAAAAAAAAg", "CCCCCCCCCCEAAAAAAAAAAg"


def manifest(**topics: TopicInfo) -> Manifest:
    return Manifest("bk", 1, 2, "zstd", topics=dict(topics))


def test_a_new_topic_and_an_unchanged_one_keep_their_names_and_record_their_ids() -> None:
    m = manifest(orders=TopicInfo(2, 1, {}, A))
    chosen = choose_incarnations(
        m, {"orders": TopicInfo(2, 1, {}, A), "audit": TopicInfo(1, 1, {}, B)}, on_recreated="fail"
    )
    assert chosen == {"orders": "orders", "audit": "audit"}
    assert m.topics["audit"].topic_id == B and m.needed_version == 5


def test_a_backup_recorded_without_ids_takes_the_id_and_leaves_recreation_to_offsets() -> None:
    m = manifest(orders=TopicInfo(2, 1))  # a version 1-4 backup, or a broker before Kafka 2.8
    assert choose_incarnations(m, {"orders": TopicInfo(2, 1, {}, A)}, on_recreated="fail") == {
        "orders": "orders"
    }
    assert m.topics["orders"].topic_id == A
    # a broker that reports no id does not erase the recorded one
    choose_incarnations(m, {"orders": TopicInfo(2, 1)}, on_recreated="fail")
    assert m.topics["orders"].topic_id == A


def test_another_id_stops_the_run_with_one_line_naming_topic_ids_and_key() -> None:
    m = manifest(orders=TopicInfo(2, 1, {}, A), audit=TopicInfo(1, 1, {}, C))
    before = Manifest.from_json(m.to_json())
    with pytest.raises(TopicRecreatedError) as refused:
        choose_incarnations(
            m, {"audit": TopicInfo(1, 1, {}, C), "orders": TopicInfo(1, 1, {}, B)}, on_recreated="fail"
        )
    assert str(refused.value) == (
        "topic 'orders' was deleted and re-created: backup 'bk' holds topic id "
        f"{A} (incarnation 1), the cluster has {B}; set backup.on_topic_recreated: new_incarnation "
        "to back up the new log separately as incarnation 2, or use a new backup_id"
    )
    assert m.topics == before.topics  # nothing recorded, not even the topics that passed


def test_new_incarnation_stores_the_new_log_under_its_own_name_and_later_runs_continue_it() -> None:
    m = manifest(orders=TopicInfo(2, 1, {}, A))
    chosen = choose_incarnations(m, {"orders": TopicInfo(1, 1, {}, B)}, on_recreated="new_incarnation")
    assert chosen == {"orders": "orders@2"}
    assert m.topics["orders"] == TopicInfo(2, 1, {}, A)  # the old incarnation stays as it was
    assert m.topics["orders@2"] == TopicInfo(1, 1, {}, B)
    assert m.incarnations("orders") == ["orders", "orders@2"]
    assert choose_incarnations(m, {"orders": TopicInfo(1, 1, {}, B)}, on_recreated="fail") == {
        "orders": "orders@2"
    }
    # re-created once more: incarnation 3, judged against the latest one
    chosen = choose_incarnations(m, {"orders": TopicInfo(3, 1, {}, C)}, on_recreated="new_incarnation")
    assert chosen == {"orders": "orders@3"}


def test_a_change_while_a_run_reads_is_found() -> None:
    m = manifest(orders=TopicInfo(2, 1, {}, A), **{"orders@2": TopicInfo(1, 1, {}, B)})
    assert recreated_since(m, {"orders": "orders@2"}, {"orders": B}) is None
    assert recreated_since(m, {"orders": "orders@2"}, {"orders": None}) is None
    message = recreated_since(m, {"orders": "orders@2"}, {"orders": C})
    assert message is not None and f"holds topic id {B} (incarnation 2), the cluster has {C}" in message
