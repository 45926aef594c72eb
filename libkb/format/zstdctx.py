"""The block compressors of codec 3: python-zstandard's, with zstd's block pre-splitter off.

Why: zstd 1.5.7 looks for a better split point inside every full 128 KiB
block before compressing it (``ZSTD_c_blockSplitterLevel``, on by default
at every level). On the bench's records it never found one: the stored
bytes were identical with it off on the cyclic pool, CDC events and
distinct records at levels 3, 6 and 9, while it cost 14 % of the
compressing threads' CPU on the cyclic pool and up to 6 % on the others
(bench/README.rst, session 17). Only on bytes whose kind changes within a
block (text, then noise) does it find a split, for about 1 % fewer bytes.

The parameter is one of zstd's experimental ones, which python-zstandard's
C backend does not take; its cffi backend (the ``zstandard[cffi]`` extra)
calls zstd's own setter. Where that backend does not load, or zstd refuses
the parameter (another zstd version), the compressors are the C backend's,
with the splitter as zstd sets it: the format is the same either way.

:class:`FrameCompressor` makes a block's frame of its own (codec 3's blocks
compressed alone) in one call that reads the block where it is and writes
the frame once, through zstd's stable-buffer parameters; ``compressobj``
would copy the block into the context's window buffer first. The same
bytes, about 5 % less CPU (bench/README.rst, session 22).
"""

from __future__ import annotations

import importlib
import logging
from functools import cache
from types import ModuleType
from typing import Any

import zstandard

from libkb.format.transforms import Buffer

log = logging.getLogger("libkb.format")

#: zstd's ``ZSTD_c_blockSplitterLevel`` (``ZSTD_c_experimentalParam20``, zstd 1.5.7 on) ...
SPLITTER_PARAMETER = 1017
#: ... and its value for "never split".
NO_SPLITTING = 1


@cache
def _cffi() -> Any:
    try:
        loaded = importlib.import_module("zstandard.backend_cffi")
    except ImportError as exc:  # no cffi: the C backend's compressors, splitter as zstd sets it
        log.debug("zstd's block pre-splitter stays on: %s", exc)
        return None
    backend_cffi: Any = loaded  # untyped module
    probe = backend_cffi.ZstdCompressor(level=3)
    if not _splitter_off(backend_cffi, probe):
        log.debug("zstd's block pre-splitter stays on: zstd %s refuses the parameter", zstandard.ZSTD_VERSION)
        return None
    return backend_cffi


def _splitter_off(backend: ModuleType, compressor: Any) -> bool:
    return _parameters_taken(backend, compressor, {SPLITTER_PARAMETER: NO_SPLITTING})


def _parameters_taken(backend: ModuleType, compressor: Any, parameters: dict[int, int]) -> bool:
    """Whether zstd took each of ``parameters`` on the context (a C-backend compressor has none to set)."""
    cctx = getattr(compressor, "_cctx", None)
    if cctx is None:
        return False
    lib = backend.lib
    return not any(
        lib.ZSTD_isError(lib.ZSTD_CCtx_setParameter(cctx, key, value)) for key, value in parameters.items()
    )


def compressor(level: int, window_log: int | None = None) -> Any:
    """A compressor at ``level`` (and ``window_log``, if given), without the pre-splitter where it can.

    Typed Any: the two backends' classes share their API, not a type.
    """
    backend: Any = _cffi() or zstandard
    if window_log is None:
        made = backend.ZstdCompressor(level=level)
    else:
        params = backend.ZstdCompressionParameters.from_level(level, window_log=window_log)
        made = backend.ZstdCompressor(compression_params=params)
    if backend is not zstandard and not _splitter_off(backend, made):
        log.debug("zstd refused the pre-splitter parameter: this compressor keeps it")  # still correct
    return made


class FrameCompressor:
    """Blocks as zstd frames of their own, flushed as ``COMPRESSOBJ_FLUSH_BLOCK`` flushes them, never ended.

    Why: ``compressobj`` copies every block into its context's window buffer
    (8 MiB at codec 3's window) and the frame through two more buffers. A
    frame made by one ``ZSTD_compressStream2`` call with zstd's
    ``ZSTD_c_stableInBuffer`` and ``ZSTD_c_stableOutBuffer`` reads the block
    in place and is written once, into this compressor's output buffer: the
    same bytes (a test compares them), about 5 % less of the compressing
    threads' CPU on distinct records, and no window buffer. The parameters
    forbid the compressor any other use, so it owns its context. Without the
    cffi backend, or where zstd refuses them, the frames come from
    ``compressobj``. One thread at a time: the output buffer is reused.
    """

    __slots__ = ("_backend", "_cctx", "_in", "_made", "_out", "_room")

    def __init__(self, level: int, window_log: int | None = None) -> None:
        self._made = compressor(level, window_log)
        backend = _cffi()
        self._backend: Any = backend if backend is not None and _stable_buffers(backend, self._made) else None
        if backend is not None and self._backend is None:
            self._made = compressor(level, window_log)  # not one left with half the parameters
        self._room = bytearray()  # the output buffer, made on first use
        if self._backend is not None:
            self._cctx = self._made._cctx
            self._in = self._backend.ffi.new("ZSTD_inBuffer *")
            self._out = self._backend.ffi.new("ZSTD_outBuffer *")

    def frame(self, kind: int, data: Buffer) -> bytes:
        """The byte ``kind``, then ``data`` compressed as a frame of its own (flushed, not ended)."""
        if self._backend is None:
            obj = self._made.compressobj()
            body: bytes = obj.compress(data) + obj.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)
            return bytes((kind,)) + body
        lib, ffi = self._backend.lib, self._backend.ffi
        size = len(data)
        need = lib.ZSTD_compressBound(size) + 1
        if len(self._room) < need:
            self._room = bytearray(need)
        room = self._room
        room[0] = kind
        src, dst = self._in, self._out
        src.src, src.size, src.pos = ffi.from_buffer(data), size, 0
        dst.dst, dst.size, dst.pos = ffi.from_buffer(room) + 1, need - 1, 0
        lib.ZSTD_CCtx_reset(self._cctx, lib.ZSTD_reset_session_only)
        left = lib.ZSTD_compressStream2(self._cctx, dst, src, lib.ZSTD_e_flush)
        if lib.ZSTD_isError(left):
            raise zstandard.ZstdError(f"cannot compress: {ffi.string(lib.ZSTD_getErrorName(left)).decode()}")
        if left or src.pos != size:  # cannot happen with room for zstd's bound; never store a part
            raise zstandard.ZstdError("zstd did not compress the whole block in one call")
        return bytes(memoryview(room)[: 1 + dst.pos])


def _stable_buffers(backend: ModuleType, made: Any) -> bool:
    lib = backend.lib
    return _parameters_taken(backend, made, {lib.ZSTD_c_stableInBuffer: 1, lib.ZSTD_c_stableOutBuffer: 1})
