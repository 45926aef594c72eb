"""Format version 5: topic ids in the manifest, incarnations stored under ``{topic}@{n}``."""

from __future__ import annotations

import json

import pytest

from libkb.errors import FormatError
from libkb.format.models import (
    TOPIC_IDS_VERSION,
    Manifest,
    PartitionIndex,
    TopicInfo,
    index_key,
    parse_stored_topic,
    stored_topic,
)


def test_stored_names_of_incarnations() -> None:
    assert stored_topic("orders", 1) == "orders"
    assert stored_topic("orders", 2) == "orders@2"
    for name, parsed in [
        ("orders", ("orders", 1)),
        ("orders@2", ("orders", 2)),
        ("orders@12", ("orders", 12)),
        ("orders@1", ("orders@1", 1)),  # never written: the first incarnation has no number
        ("@2", ("@2", 1)),
        ("a@b", ("a@b", 1)),
    ]:
        assert parse_stored_topic(name) == parsed
    assert index_key("bk", "orders@2", 0) == "bk/topics/orders@2/partition=0/index.json"


def test_a_manifest_states_version_5_only_once_it_records_an_id() -> None:
    plain = Manifest("bk", 1, 2, "zstd", topics={"orders": TopicInfo(2, 1)})
    assert plain.needed_version == 1
    assert b"topic_id" not in plain.to_json()  # byte for byte what a version-1 libkb writes
    with_id = Manifest("bk", 1, 2, "zstd", topics={"orders": TopicInfo(2, 1, {}, "AAAAAAAAAAEAAAAAAAAAAg")})
    assert with_id.needed_version == TOPIC_IDS_VERSION == 5
    body = json.loads(with_id.to_json())
    assert body["format_version"] == 5 and body["topics"]["orders"]["topic_id"] == "AAAAAAAAAAEAAAAAAAAAAg"
    assert Manifest.from_json(with_id.to_json()).topics == with_id.topics


def test_ids_and_incarnations_in_an_object_stating_an_older_version_are_refused() -> None:
    body = json.loads(Manifest("bk", 1, 2, "zstd", topics={"orders": TopicInfo(2, 1, {}, "x")}).to_json())
    body["format_version"] = 4
    with pytest.raises(FormatError, match="topic ids and incarnations need format version 5"):
        Manifest.from_json(json.dumps(body).encode(), name="bk/manifest.json")
    body["format_version"] = 5
    body["topics"]["orders"]["topic_id"] = 7
    with pytest.raises(FormatError, match=r"topics\.orders\.topic_id: expected a string or null, found int"):
        Manifest.from_json(json.dumps(body).encode(), name="bk/manifest.json")

    index = PartitionIndex("orders@2", 0)
    assert json.loads(index.to_json())["format_version"] == 5
    assert PartitionIndex("orders", 0).needed_version == 1
    body = json.loads(index.to_json())
    body["format_version"] = 4
    with pytest.raises(FormatError, match=r"is a topic incarnation \(orders@2\) but states format version 4"):
        PartitionIndex.from_json(json.dumps(body).encode(), name="i")
