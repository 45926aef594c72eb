"""Valid checksums over invalid contents: validate --deep and describe say which object, in one line.

Before, a bad record in a block whose checksums held made ``validate --deep``
print "unexpected IndexError" without naming the segment.
"""

from __future__ import annotations

import dataclasses
import json
from io import BytesIO

import msgpack
import pytest

from libkb.cli import main
from libkb.format.models import PartitionIndex, index_key, manifest_key, segment_key
from libkb.storage import StorageBackend
from tests.cli.stored import write_backup
from tests.fuzz.segments import pack_items, raw_block, replace_block


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    ("bad", "words"),
    [
        ({3: "a text key"}, "undecodable record: key or value is not bytes or nil"),
        ({5: [["h"]]}, "undecodable record: a header is not a [name, value] pair"),
        ({0: 10.5}, "undecodable record: offset, timestamp or timestamp type"),
        ({6: None}, "undecodable record: not an array of six items"),
    ],
    ids=["text-key", "short-header", "float-offset", "seven-items"],
)
def test_validate_deep_names_the_segment_and_block_of_a_bad_record(
    capsys: pytest.CaptureFixture[str], store: tuple[str, StorageBackend], bad: dict[int, object], words: str
) -> None:
    path, backend = store
    write_backup(backend, "b1")
    key = segment_key("b1", "orders", 0, 10)
    items = list(msgpack.Unpacker(BytesIO(raw_block(backend.get(key), 0)), raw=False))
    for field, value in bad.items():  # the middle record gets the bad field
        items[5][field : field + 1] = [value]
    data = replace_block(backend.get(key), 0, pack_items(items))
    backend.put(key, data)
    index = PartitionIndex.from_json(backend.get(index_key("b1", "orders", 0)))
    at = next(i for i, entry in enumerate(index.segments) if entry.key == key)
    index.segments[at] = dataclasses.replace(index.segments[at], size=len(data))  # as its writer would say
    backend.put(index_key("b1", "orders", 0), index.to_json())
    code, out, err = run(
        capsys, "validate", "--path", path, "--backup-id", "b1", "--deep", "--format", "json"
    )
    problems = json.loads(out)["problems"]
    assert code == 1 and "unexpected" not in out + err
    assert any(p.startswith(f"{key}: the block of offsets ") and words in p for p in problems), problems


def test_a_wrongly_typed_manifest_is_one_line_naming_it(
    capsys: pytest.CaptureFixture[str], store: tuple[str, StorageBackend]
) -> None:
    path, backend = store
    write_backup(backend, "b1")
    body = json.loads(backend.get(manifest_key("b1")))
    body["topics"]["orders"]["partitions"] = "3"
    backend.put(manifest_key("b1"), json.dumps(body).encode())
    code, _, err = run(capsys, "describe", "--path", path, "--backup-id", "b1")
    assert code == 1 and err.count("\n") == 1
    assert (
        f"{manifest_key('b1')}: malformed manifest: topics.orders.partitions: expected an integer, found str"
        in err
    )
