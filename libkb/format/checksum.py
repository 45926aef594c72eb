"""CRC-32 for the segment writer, computed once per block and without giving up the GIL.

``zlib.crc32`` releases the GIL for buffers over 5 KiB. In a backup the
consuming thread is busy in Python almost all the time, so a helper thread
that releases the GIL waits up to the interpreter's switch interval (5 ms)
to get it back: measured, a segment upload thread fell from 1058 MiB/s to
46 MiB/s that way. With the C extension (``libkb/format/_packer.c``) each
block is checksummed once, holding the GIL (0.15 ms per MiB), and the
segment's body checksum is combined from the block checksums
(``crc32_combine``) instead of reading every byte a second time. Without it,
zlib does both passes.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

Buffer = bytes | bytearray | memoryview

_c_crc32: Callable[..., int] | None
_c_combine: Callable[[int, int, int], int] | None
try:
    from libkb.format._packer import crc32 as _c_crc32
    from libkb.format._packer import crc32_combine as _c_combine
except ImportError:  # no compiler at install time
    _c_crc32 = _c_combine = None


def block_crc(data: Buffer) -> int:
    """CRC-32 of one block's stored bytes."""
    if _c_crc32 is not None:
        return _c_crc32(data)
    return zlib.crc32(data)


def extend_crc(crc: int, data: Buffer, data_crc: int) -> int:
    """The CRC-32 of (what ``crc`` covers) + ``data``, given ``data_crc == crc32(data)``."""
    if _c_combine is not None:
        return _c_combine(crc, data_crc, len(data))
    return zlib.crc32(data, crc)
