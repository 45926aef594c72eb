from collections.abc import Callable
from typing import Any

def pack_messages(
    msgs: list[Any] | Intake,
    start: int,
    out: bytearray,
    pos: int,
    limit: int,
    topic: str | None,
    partition: int,
    end_offset: int,
    stop: int | None = None,
    /,
) -> tuple[int, int, int, int, int, int, int, int]: ...

class Intake:
    def __init__(
        self, consumer: Any, consumer_type: type, factory: Callable[..., Any], library: str
    ) -> None: ...
    def route(self, topic: str, partition: int, /) -> None: ...
    def fetch(self, max_messages: int, timeout: float, /) -> int: ...
    def close(self) -> None: ...
    def __len__(self) -> int: ...
    def __getitem__(self, i: int, /) -> Any: ...

class RecordProducer:
    def __init__(
        self, producer: Any, producer_type: type, on_delivery: Callable[..., Any] | None, library: str
    ) -> None: ...
    def produce(
        self, topic: str, partition: int, records: list[Any], start: int, /
    ) -> tuple[int, int, int]: ...
    def produce_packed(
        self,
        topic: str,
        partition: int,
        block: bytes | bytearray,
        pos: int,
        first: int,
        last: int,
        count: int,
        start: int,
        keep: Callable[..., Any] | None = None,
        /,
    ) -> tuple[int, int, int]: ...
    @staticmethod
    def consecutive(records: list[Any], first: int, /) -> bool: ...
    @staticmethod
    def read_packed(
        block: bytes | bytearray, pos: int, first: int, last: int, count: int, /
    ) -> list[tuple[bytes | None, bytes | None, list[tuple[str, bytes | None]] | None, int]] | None: ...

def crc32(data: bytes | bytearray | memoryview, value: int = 0, /) -> int: ...
def crc32_combine(crc1: int, crc2: int, len2: int, /) -> int: ...
def new_buffer(size: int, /) -> bytearray: ...
def regrow(buf: bytearray, size: int, /) -> None: ...
def set_malloc_thresholds(mmap_threshold: int, trim_threshold: int, /) -> bool: ...
