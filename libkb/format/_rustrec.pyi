from typing import Any

def decode_records(
    buf: bytes | bytearray | memoryview,
    pos: int,
    end: int,
    max_bytes: int,
    max_count: int,
    prev: int,
    strip: bool,
    base: int = 0,
    /,
) -> tuple[list[Any], int, int]: ...
