"""The stored offset snapshot: exact round trip, versioned, refusing what it cannot read."""

from __future__ import annotations

import json
import re

import pytest

from libkb.errors import ConfigError, FormatError
from libkb.kafka.types import CommittedOffset
from libkb.offsets.snapshot import FORMAT_NAME, OffsetSnapshot, check_snapshot_id, new_snapshot_id

SNAP = OffsetSnapshot(
    snapshot_id="snap-1717000000000-1a2b3c4d",
    backup_id="bk",
    created_ms=1_717_000_000_000,
    groups={
        "billing": {
            ("orders", 1): CommittedOffset(7),
            ("orders", 0): CommittedOffset(17, "state\nwith newline", 3),
            ("events", 12): CommittedOffset(4_294_967_401, ""),
        },
        "gone": {},
    },
    bootstrap_servers=["a:9092", "b:9092"],
    cluster_id="Q7s3nXn1T2yG2b2lGqkZ1w",
    description="before offset-reset execute",
    restore_id="r-5f3c0a9e21b7d4c6",
)


def test_round_trip_keeps_every_field_and_the_empty_group() -> None:
    back = OffsetSnapshot.from_json(SNAP.to_json(), name="x")
    assert back == SNAP
    assert back.groups["gone"] == {}
    assert back.groups["billing"][("orders", 0)] == CommittedOffset(17, "state\nwith newline", 3)
    assert back.offset_count == 3


def test_the_stored_json_layout() -> None:
    body = json.loads(SNAP.to_json())
    assert body["format"] == FORMAT_NAME and body["format_version"] == 1
    assert body["groups"]["billing"]["orders"] == {
        "0": {"offset": 17, "metadata": "state\nwith newline", "leader_epoch": 3},
        "1": {"offset": 7},
    }
    assert body["groups"]["billing"]["events"] == {"12": {"offset": 4_294_967_401, "metadata": ""}}
    assert body["groups"]["gone"] == {}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"format_version": 2},
            "x: offset snapshot format version 2 is newer than this libkb reads (1); upgrade libkb",
        ),
        ({"format": "libkb-backup"}, "x: not a libkb offset snapshot"),
        ({"groups": None}, "x: malformed offset snapshot"),
        ({"created_ms": "soon"}, "x: malformed offset snapshot"),
        ({"groups": {"g": {"t": {"0": {"offset": -1}}}}}, "x: malformed offset snapshot"),
        ({"groups": {"g": {"t": {"zero": {"offset": 1}}}}}, "x: malformed offset snapshot"),
    ],
)
def test_unreadable_snapshots_are_refused_naming_the_object(change: dict[str, object], message: str) -> None:
    body = {**json.loads(SNAP.to_json()), **change}
    with pytest.raises(FormatError, match="^" + re.escape(message)):
        OffsetSnapshot.from_json(json.dumps(body).encode(), name="x")


def test_unknown_fields_are_ignored() -> None:
    body = {**json.loads(SNAP.to_json()), "added_later": [1, 2]}
    assert OffsetSnapshot.from_json(json.dumps(body).encode(), name="x").groups == SNAP.groups


def test_ids_sort_by_time_and_only_their_shape_is_accepted() -> None:
    early, late = new_snapshot_id(999_999_999_999), new_snapshot_id(1_717_000_000_000)
    assert early < late and check_snapshot_id(late) == late
    assert early.startswith("snap-0999999999999-")
    for bad in ("snap-1", "../manifest", "snap-1717000000000-1A2B3C4D", "snap-1717000000000-1a2b3c4d/x"):
        with pytest.raises(ConfigError, match=r"--snapshot-id: .* is not a snapshot id"):
            check_snapshot_id(bad)
