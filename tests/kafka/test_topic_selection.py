"""Which topics a backup picks: globs, excludes, and internal (``__``) topics as docs/config.rst promises."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from libkb.config.models import TopicSelection
from libkb.kafka.admin import KafkaAdmin

# name -> partition count, as the fake cluster reports them
CLUSTER = {
    "orders-eu": 3,
    "orders-us": 2,
    "preorders-eu": 1,
    "orders": 4,
    "payments": 1,
    "__consumer_offsets": 50,
    "__transaction_state": 50,
}


@dataclass
class _Topic:
    """The two fields of confluent-kafka's TopicMetadata that select_topics reads."""

    partitions: dict[int, object]
    error: Any = None


@dataclass
class _Metadata:
    topics: dict[str, _Topic] = field(default_factory=dict)


class _FakeAdminClient:
    """Answers ``list_topics`` like AdminClient does; no ``connection_errors``, so one request."""

    def __init__(self, topics: dict[str, int], broken: tuple[str, ...] = ()) -> None:
        self.metadata = _Metadata(
            {
                name: _Topic(
                    {p: object() for p in range(count)}, "LEADER_NOT_AVAILABLE" if name in broken else None
                )
                for name, count in topics.items()
            }
        )
        self.calls = 0

    def list_topics(self, *, timeout: float) -> _Metadata:
        self.calls += 1
        return self.metadata


def select(
    include: tuple[str, ...] = ("*",),
    exclude: tuple[str, ...] = (),
    *,
    include_internal: bool | frozenset[str] = False,
    topics: dict[str, int] = CLUSTER,
    broken: tuple[str, ...] = (),
) -> dict[str, int]:
    """Run KafkaAdmin.select_topics against a fake cluster (no broker needed)."""
    admin = KafkaAdmin(_FakeAdminClient(topics, broken), timeout=5)  # type: ignore[arg-type]
    return admin.select_topics(TopicSelection(include, exclude), include_internal=include_internal)


def test_star_selects_every_non_internal_topic_with_partition_counts() -> None:
    assert select() == {"orders": 4, "orders-eu": 3, "orders-us": 2, "payments": 1, "preorders-eu": 1}


def test_star_with_include_internal_also_selects_internal_topics() -> None:
    chosen = select(include_internal=True)
    assert chosen["__consumer_offsets"] == 50 and "__transaction_state" in chosen
    assert len(chosen) == len(CLUSTER)


@pytest.mark.parametrize("generic", ["*", "?*", "*offsets", "[_]*"])
def test_generic_patterns_do_not_reach_internal_topics_without_the_flag(generic: str) -> None:
    assert not [t for t in select((generic,)) if t.startswith("__")]


def test_internal_topics_list_lets_generic_patterns_reach_just_those() -> None:
    # the original tool's include_internal_topics: true with internal_topics: [__consumer_offsets]
    chosen = select(include_internal=frozenset({"__consumer_offsets"}))
    assert "__consumer_offsets" in chosen and "__transaction_state" not in chosen
    assert select(("orders",), include_internal=frozenset({"__consumer_offsets"})) == {"orders": 4}


@pytest.mark.parametrize(
    ("pattern", "chosen"),
    [
        ("~^orders-(eu|us)$", {"orders-eu": 3, "orders-us": 2}),
        ("~orders-", {"orders-eu": 3, "orders-us": 2, "preorders-eu": 1}),  # searched, as the original
        ("~^__", {}),  # internal topics stay out of generic patterns
    ],
)
def test_a_tilde_pattern_is_a_regular_expression(pattern: str, chosen: dict[str, int]) -> None:
    assert select((pattern,)) == chosen


def test_an_internal_topic_named_explicitly_is_selected_without_the_flag() -> None:
    assert select(("__consumer_offsets",)) == {"__consumer_offsets": 50}


def test_an_explicit_internal_name_next_to_star_adds_only_that_internal_topic() -> None:
    chosen = select(("*", "__consumer_offsets"))
    assert "__consumer_offsets" in chosen and "__transaction_state" not in chosen
    assert "payments" in chosen


def test_a_pattern_starting_with_underscores_selects_internal_topics() -> None:
    assert select(("__*",)) == {"__consumer_offsets": 50, "__transaction_state": 50}


def test_excludes_win_over_includes() -> None:
    assert select(("orders-*",), ("orders-us",)) == {"orders-eu": 3}
    assert select(("__consumer_offsets",), ("__*",)) == {}
    assert "__consumer_offsets" not in select(include_internal=True, exclude=("__*",))


def test_a_glob_matches_the_whole_name_so_orders_star_is_a_prefix_only() -> None:
    # not "preorders-eu" (no substring match) and not "orders" (the "-" is required)
    assert select(("orders-*",)) == {"orders-eu": 3, "orders-us": 2}


def test_matching_is_case_sensitive() -> None:
    assert select(("Orders-*",)) == {}


def test_topics_the_cluster_reports_with_an_error_are_skipped() -> None:
    assert select(("orders-*",), broken=("orders-us",)) == {"orders-eu": 3}


@pytest.mark.parametrize(
    ("include", "exclude"),
    [(("missing-*",), ()), (("orders-*",), ("orders-*",)), (("*",), ())],
)
def test_no_match_is_an_empty_selection_for_the_caller_to_report(
    include: tuple[str, ...], exclude: tuple[str, ...]
) -> None:
    # BackupEngine._prepare turns an empty selection into "no topic ... matches source.topics".
    topics = {"__consumer_offsets": 50} if include == ("*",) else CLUSTER
    assert select(include, exclude, topics=topics) == {}


def test_one_metadata_request_per_selection() -> None:
    fake = _FakeAdminClient(CLUSTER)
    KafkaAdmin(fake, timeout=5).select_topics(TopicSelection(), include_internal=False)  # type: ignore[arg-type]
    assert fake.calls == 1


def test_every_excluded_topic_names_the_rule_that_excluded_it() -> None:
    """What ``backup --dry-run`` lists under excluded topics."""
    admin = KafkaAdmin(_FakeAdminClient(CLUSTER), timeout=5)  # type: ignore[arg-type]
    chosen, excluded = admin.classify_topics(
        TopicSelection(("orders*", "__*offsets"), ("orders-us",)), include_internal=False
    )
    assert chosen == {"orders": 4, "orders-eu": 3, "__consumer_offsets": 50}
    assert excluded == {
        "orders-us": "source.topics.exclude 'orders-us'",
        "payments": "no source.topics.include pattern matches",
        "preorders-eu": "no source.topics.include pattern matches",
        "__transaction_state": "no source.topics.include pattern matches",
    }
    _, internal = admin.classify_topics(TopicSelection(), include_internal=False)
    assert internal["__consumer_offsets"].startswith("internal topic (backup.include_internal_topics")
    _, listed = admin.classify_topics(TopicSelection(), include_internal=frozenset({"__consumer_offsets"}))
    assert listed == {"__transaction_state": "internal topic not in backup.internal_topics"}
