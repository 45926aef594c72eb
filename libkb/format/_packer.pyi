from typing import Any

def pack_messages(
    msgs: list[Any],
    start: int,
    out: bytearray,
    pos: int,
    limit: int,
    topic: str | None,
    partition: int,
    end_offset: int,
    /,
) -> tuple[int, int, int, int, int, int, int, int]: ...
def crc32(data: bytes | bytearray | memoryview, value: int = 0, /) -> int: ...
def crc32_combine(crc1: int, crc2: int, len2: int, /) -> int: ...
def new_buffer(size: int, /) -> bytearray: ...
