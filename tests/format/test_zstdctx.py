"""Codec 3's compressors with zstd's block pre-splitter off (libkb.format.zstdctx).

What a user relies on: every block still decodes to its bytes with any zstd
decoder; on record data the stored bytes are what zstd's default stores; and
a machine without the cffi backend (or with a zstd that refuses the
parameter) still backs up, with the splitter as zstd sets it.
"""

from __future__ import annotations

import json
import random
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import zstandard

from libkb.format import zstdctx
from libkb.format.zstream import WINDOW_LOG, StreamDecoder, StreamEncoder


def _records_block(seed: int, size: int = 1 << 20) -> bytes:
    """A block of JSON-like records, as the bench's distinct data set has them."""
    rnd = random.Random(seed)
    out = bytearray()
    while len(out) < size:
        event = {
            "id": rnd.randrange(10**9),
            "user": f"u{rnd.randrange(10**5)}",
            "amount": rnd.random() * 100,
            "tags": [rnd.choice("abcdefgh") * rnd.randrange(1, 9) for _ in range(4)],
        }
        out += json.dumps(event).encode()
    return bytes(out[:size])


def _blocks(count: int) -> Iterator[bytes]:
    for seed in range(count):
        yield _records_block(seed)


def splitter_level(compressor: Any) -> int | None:
    """The pre-splitter setting of a compressor from zstdctx (None: the C backend's, not readable)."""
    backend = zstdctx._cffi()
    cctx = getattr(compressor, "_cctx", None)
    if backend is None or cctx is None:
        return None
    value = backend.ffi.new("int *")
    backend.lib.ZSTD_CCtx_getParameter(cctx, zstdctx.SPLITTER_PARAMETER, value)
    return int(value[0])


@pytest.fixture(autouse=True)
def _fresh_backend_choice() -> Iterator[None]:
    zstdctx._cffi.cache_clear()
    yield
    zstdctx._cffi.cache_clear()


def test_the_compressors_have_the_splitter_off_where_cffi_loads() -> None:
    made = zstdctx.compressor(3, WINDOW_LOG)
    assert splitter_level(made) == zstdctx.NO_SPLITTING
    assert splitter_level(zstdctx.compressor(-1)) == zstdctx.NO_SPLITTING


def test_blocks_decode_with_the_c_backend_and_store_what_zstds_default_stores() -> None:
    blocks = list(_blocks(4))
    ours = zstdctx.compressor(3, WINDOW_LOG).compressobj()
    default = zstandard.ZstdCompressor(
        compression_params=zstandard.ZstdCompressionParameters.from_level(3, window_log=WINDOW_LOG)
    ).compressobj()
    reader = zstandard.ZstdDecompressor().decompressobj()
    for block in blocks:
        stored = ours.compress(block) + ours.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)
        assert reader.decompress(stored) == block
        assert stored == default.compress(block) + default.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)


def test_without_the_cffi_backend_the_c_backends_compressors_do_the_same_job(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "zstandard.backend_cffi", None)  # its import fails
    made = zstdctx.compressor(3, WINDOW_LOG)
    assert isinstance(made, zstandard.ZstdCompressor)
    assert splitter_level(made) is None
    encoder, decoder = StreamEncoder(3, restart_blocks=4), StreamDecoder()
    for index, block in enumerate(_blocks(3)):
        assert decoder.decode(encoder.encode(block, index), index, len(block)) == block


def test_a_zstd_that_refuses_the_parameter_keeps_its_splitter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(zstdctx, "SPLITTER_PARAMETER", 999_999)  # no such parameter
    made = zstdctx.compressor(3)
    assert isinstance(made, zstandard.ZstdCompressor)
    out = made.compressobj()
    block = _records_block(9)
    assert (
        zstandard.ZstdDecompressor()
        .decompressobj()
        .decompress(out.compress(block) + out.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK))
        == block
    )


def _compressobj_frame(level: int, kind: int, data: bytes) -> bytes:
    """What codec 3 stored for a block compressed alone before FrameCompressor: compressobj, flushed."""
    obj = zstandard.ZstdCompressor(
        compression_params=zstandard.ZstdCompressionParameters.from_level(level, window_log=WINDOW_LOG)
    ).compressobj()
    return bytes((kind,)) + obj.compress(data) + obj.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)


def _frame_inputs() -> list[bytes]:
    noise = random.Random(5).randbytes(300_000)
    return [_records_block(1), b"", b"x", noise, _records_block(2, 3 << 20), _records_block(3, 4096)]


@pytest.mark.parametrize("level", [3, -1])
def test_frames_made_in_one_call_are_the_bytes_compressobj_made(level: int) -> None:
    # Stored bytes stay what earlier libkb versions wrote and read: a reader cannot tell.
    frames = zstdctx.FrameCompressor(level, WINDOW_LOG)
    assert frames._backend is not None  # the cffi path, not the fallback
    decoder = StreamDecoder()
    for index, data in enumerate(_frame_inputs()):
        for given in (data, bytearray(data), memoryview(data)):
            made = frames.frame(2, given)
            assert made == _compressobj_frame(level, 2, data)
            if data:  # an empty block is never stored (nor is its frame one that decodes)
                assert decoder.decode(made, index, len(data)) == data


def test_without_the_cffi_backend_frames_are_the_same_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "zstandard.backend_cffi", None)
    frames = zstdctx.FrameCompressor(3, WINDOW_LOG)
    assert frames._backend is None
    for data in _frame_inputs():
        assert frames.frame(3, data) == _compressobj_frame(3, 3, data)


def test_a_zstd_that_refuses_stable_buffers_gets_a_compressor_without_either(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    refused: list[bool] = []

    def half_set(backend: Any, made: Any) -> bool:
        # The first parameter taken, the second refused: that compressor must not be used.
        backend.lib.ZSTD_CCtx_setParameter(made._cctx, backend.lib.ZSTD_c_stableInBuffer, 1)
        refused.append(True)
        return False

    monkeypatch.setattr(zstdctx, "_stable_buffers", half_set)
    frames = zstdctx.FrameCompressor(3, WINDOW_LOG)
    assert refused and frames._backend is None
    for data in _frame_inputs():
        assert frames.frame(2, data) == _compressobj_frame(3, 2, data)


def test_frames_hold_no_window_buffer() -> None:
    # Why the compressing threads' memory is lower: the block is read where it is.
    block = _records_block(4)
    frames = zstdctx.FrameCompressor(3, WINDOW_LOG)
    frames.frame(2, block)
    streamed = zstdctx.compressor(3, WINDOW_LOG)
    obj = streamed.compressobj()
    obj.compress(block) + obj.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)
    assert streamed.memory_size() - frames._made.memory_size() >= 1 << WINDOW_LOG
