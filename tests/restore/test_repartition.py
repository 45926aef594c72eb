"""Which topics a restore writes by key, and into how many partitions. Pure planning."""

from __future__ import annotations

from typing import Any

import pytest

from libkb.config.models import RestoreOptions, TopicRepartitioning, TopicSelection
from libkb.errors import ConfigError
from libkb.restore.plan import RestorePlan, plan_restore
from tests.restore.test_plan import INDEXES, MANIFEST  # orders: 2 partitions, payments: 1


def plan(counts: dict[str, int] | None = None, **options: Any) -> RestorePlan:
    return plan_restore(MANIFEST, INDEXES, RestoreOptions(**options), TopicSelection(("*",)), counts)


def by_key(p: RestorePlan) -> dict[str, tuple[str, int, str, list[int]]]:
    return {
        s.source_topic: (s.target_topic, s.partitions, s.strategy, [t.source_partition for t in s.sources])
        for s in p.spread
    }


def test_auto_restores_by_key_only_into_an_existing_topic_with_another_partition_count() -> None:
    assert plan().spread == [] and plan({"orders": 2}).spread == []  # unknown target, same count
    assert plan({"other": 5}).spread == []  # the target does not exist: it is created as backed up
    p = plan({"orders": 5, "payments": 1})
    assert by_key(p) == {"orders": ("orders", 5, "murmur2", [0, 1])}
    assert all(t.target_partition == -1 for t in p.spread[0].sources)
    assert [(t.source_topic, t.target_partition) for t in p.tasks] == [("payments", 0)]
    assert p.target_partitions == {"orders": 5, "payments": 1}
    assert p.max_records == 200 + 10 + 10
    fewer = plan({"orders": 1})
    assert by_key(fewer) == {"orders": ("orders", 1, "murmur2", [0, 1])}


def test_the_targets_are_keyed_by_source_partition_or_by_target_partition_of_a_topic_by_key() -> None:
    targets = plan({"orders": 3}).targets()
    assert [(t.key, t.topic, t.partition) for t in targets] == [
        ("payments/0", "payments", 0),
        ("orders/*/0", "orders", 0),
        ("orders/*/1", "orders", 1),
        ("orders/*/2", "orders", 2),
    ]


def test_partition_mapping_keeps_auto_one_to_one() -> None:
    assert plan({"orders": 5}, partition_mapping={"orders": {0: 3, 1: 4}}).spread == []
    assert plan({"orders": 5}, partition_mapping={"*": {0: 0}}).spread == []


def test_repartition_true_restores_every_topic_by_key_and_false_none() -> None:
    p = plan({"orders": 3}, repartition="always")
    assert by_key(p) == {
        "orders": ("orders", 3, "murmur2", [0, 1]),
        "payments": ("payments", 1, "murmur2", [0]),  # not there: into the backed-up count
    }
    assert p.tasks == []
    never = plan({"orders": 1}, repartition="never")
    assert never.spread == [] and never.target_partitions["orders"] == 2  # refused by the topic check


def test_the_original_tools_repartitioning_is_keyed_by_target_topic() -> None:
    entry = TopicRepartitioning("automatic", 3)
    p = plan(None, topic_mapping={"orders": "orders-new"}, repartitioning={"orders-new": entry})
    assert by_key(p) == {"orders": ("orders-new", 3, "automatic", [0, 1])}
    existing = plan(
        {"orders-new": 3}, topic_mapping={"orders": "orders-new"}, repartitioning={"orders-new": entry}
    )
    assert by_key(existing) == by_key(p)
    # Without a count: the existing topic's, or the backed-up one; its "*" mapping is for other topics.
    counted = plan(
        {"orders": 4}, repartitioning={"orders": TopicRepartitioning()}, partition_mapping={"*": {}}
    )
    assert by_key(counted) == {"orders": ("orders", 4, "murmur2", [0, 1])}
    assert by_key(plan(None, repartitioning={"orders": TopicRepartitioning()})) == {
        "orders": ("orders", 2, "murmur2", [0, 1])
    }


@pytest.mark.parametrize(
    ("counts", "options", "key", "words"),
    [
        (
            {"orders": 4},
            {"repartitioning": {"orders": TopicRepartitioning(target_partitions=3)}},
            "restore.repartitioning.orders.target_partitions",
            "target topic 'orders' has 4 partitions, not 3; set target_partitions to 4, add partitions "
            "to the topic, or restore into a new topic",
        ),
        (
            None,
            {"repartitioning": {"nowhere": TopicRepartitioning()}},
            "restore.repartitioning",
            "'nowhere' is not a target topic of this restore (they are: audit, orders, payments); its "
            "keys are target topic names, after topic_mapping",
        ),
        (
            None,
            {"repartitioning": {"orders": TopicRepartitioning()}, "partition_mapping": {"orders": {0: 1}}},
            "restore.partition_mapping",
            "partition_mapping places the partitions of 'orders' one to one, but "
            "repartitioning.orders restores 'orders' by key; remove one of them",
        ),
        (
            None,
            {"repartition": "always", "partition_mapping": {"*": {0: 1}}},
            "restore.partition_mapping",
            "partition_mapping places the partitions of 'audit' one to one, but repartition: true "
            "restores 'audit' by key; remove one of them",
        ),
    ],
)
def test_contradictions_are_refused_naming_the_key(
    counts: dict[str, int] | None, options: dict[str, Any], key: str, words: str
) -> None:
    with pytest.raises(ConfigError) as info:
        plan(counts, **options)
    assert info.value.key == key
    assert str(info.value) == f"{key}: {words}"
