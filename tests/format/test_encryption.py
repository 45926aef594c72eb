"""The block cipher, the seal and the key object of format version 6, with bytes alone."""

from __future__ import annotations

import dataclasses

import pytest

from libkb.errors import FormatError
from libkb.format.encryption import (
    OVERHEAD,
    BlockEncryption,
    DataKey,
    KeyObject,
    SegmentKeys,
    check_seal,
    key_object_key,
    make_seal,
    segment_of_key_object,
)
from libkb.format.segment import FOOTER_SIZE, SegmentError, SegmentReader, encode_segment, encrypted_chain
from libkb.format.transforms import BlockContext, TransformError

PLACE = BlockContext("orders", 3, 1000, 2, 11)


def test_a_block_decrypts_only_at_its_own_place_under_its_own_key() -> None:
    key = DataKey.generate()
    cipher = BlockEncryption("bk", key)
    stored = cipher.encode(b"hello block", PLACE)
    assert len(stored) == 11 + OVERHEAD and b"hello" not in stored
    assert cipher.decode(stored, PLACE) == b"hello block"
    assert cipher.encode(b"hello block", PLACE) != stored  # a fresh nonce every time
    moved = [
        dataclasses.replace(PLACE, topic="orders2"),
        dataclasses.replace(PLACE, partition=4),
        dataclasses.replace(PLACE, base_offset=1001),
        dataclasses.replace(PLACE, block_index=1),
        dataclasses.replace(PLACE, raw_len=12),
    ]
    for place in moved:
        with pytest.raises(TransformError, match="fails authentication"):
            cipher.decode(stored, place)
    with pytest.raises(TransformError, match=f"block {PLACE.block_index} fails authentication"):
        BlockEncryption("other-backup", key).decode(stored, PLACE)
    with pytest.raises(TransformError):
        BlockEncryption("bk", DataKey.generate()).decode(stored, PLACE)
    with pytest.raises(TransformError):
        cipher.decode(stored[:-1] + bytes([stored[-1] ^ 1]), PLACE)
    with pytest.raises(TransformError):
        cipher.decode(stored[: OVERHEAD - 1], PLACE)


def test_the_writer_makes_one_key_per_segment_and_forgets_it_once_taken() -> None:
    keys = SegmentKeys()
    a = keys.key_for("t", 0, 0)
    assert (
        keys.key_for("t", 0, 0) is a and keys.key_for("t", 0, 5) is not a and keys.key_for("t", 1, 0) is not a
    )
    assert (
        keys.take("t", 0, 0) is a and keys.take("t", 0, 0) is not a
    )  # a segment without blocks gets one too
    assert "secret" not in repr(keys) and repr(a) == str(a) == "DataKey(***)"


def test_an_encrypted_segment_reads_only_with_its_chain_and_its_seal_binds_the_footer() -> None:
    key = DataKey.generate()
    records = [(i, 1000 + i, 1, b"k", b"v%d" % i, None) for i in range(50)]
    data = encode_segment("t", 0, 0, 50, records, block_bytes=64, encryption=BlockEncryption("bk", key))
    reader = SegmentReader(data, name="seg")
    assert reader.header.encrypted and reader.header.version == 6 and reader.footer.block_count > 2
    with pytest.raises(SegmentError, match="seg: its blocks are encrypted; reading them needs its key"):
        list(reader.records())
    chain = encrypted_chain(reader.header.codec, BlockEncryption("bk", key))
    assert list(SegmentReader(data, name="seg", chain=chain).records()) == records
    footer = data[-FOOTER_SIZE:]
    seal = make_seal(key, "bk", "t", 0, 0, footer)
    check_seal(key, seal, "bk", "t", 0, 0, footer, "seg")
    fewer = bytearray(footer)
    fewer[12] -= 1  # block_count
    with pytest.raises(FormatError, match="seg: its footer fails authentication"):
        check_seal(key, seal, "bk", "t", 0, 0, bytes(fewer), "seg")
    with pytest.raises(FormatError, match="seg: its footer fails authentication"):
        check_seal(key, seal, "bk", "t", 1, 0, footer, "seg")


def test_key_objects_round_trip_and_refuse_what_they_do_not_know() -> None:
    segment = "bk/topics/t/partition=0/segment-00000000000000000000.kbs"
    assert key_object_key(segment) == "bk/topics/t/partition=0/segment-00000000000000000000.key.json"
    assert (
        segment_of_key_object(key_object_key(segment)) == segment and segment_of_key_object(segment) is None
    )
    obj = KeyObject(segment, "kek-1", "local", b"\x01wrapped", b"\x02seal")
    assert KeyObject.from_json(obj.to_json(), name="k", read_version=6) == obj
    newer = obj.to_json().replace(b'"format_version": 6', b'"format_version": 7')
    with pytest.raises(FormatError, match="k: format version 7 is newer than this libkb reads"):
        KeyObject.from_json(newer, name="k", read_version=6)
    other = obj.to_json().replace(b"AES-256-GCM", b"ChaCha20")
    with pytest.raises(FormatError, match="k: unknown algorithm 'ChaCha20'"):
        KeyObject.from_json(other, name="k", read_version=6)
    with pytest.raises(FormatError, match="k: malformed key object"):
        KeyObject.from_json(obj.to_json().replace(b'"seal"', b'"seel"'), name="k", read_version=6)
