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
"""

from __future__ import annotations

import importlib
import logging
from functools import cache
from types import ModuleType
from typing import Any

import zstandard

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
    cctx = getattr(compressor, "_cctx", None)
    if cctx is None:
        return False
    return not backend.lib.ZSTD_isError(
        backend.lib.ZSTD_CCtx_setParameter(cctx, SPLITTER_PARAMETER, NO_SPLITTING)
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
