"""What a restore's options mean to its librdkafka producer, and the headers it may add.

The original tool's ``produce_batch_size`` counts records and its
``produce_timeout_ms`` is how long the broker may take to acknowledge a
produce request; they map onto librdkafka's properties of the same meaning.
libkb's byte limit and delivery timeout have their own keys.
"""

from __future__ import annotations

from typing import Any

from libkb.config.models import RestoreOptions

#: ``include_original_offset_header``: the original tool's header names and encodings
#: (little-endian, 8 bytes for the offset and timestamp, 4 for the partition).
ORIGINAL_OFFSET_HEADER = "x-original-offset"
ORIGINAL_TIMESTAMP_HEADER = "x-original-timestamp"
SOURCE_PARTITION_HEADER = "x-source-partition"


def producer_batch_settings(options: RestoreOptions) -> dict[str, Any]:
    """The librdkafka properties for the restore options about batches and timeouts.

    A batch ends at ``produce_batch_size`` records or ``produce_batch_bytes``
    bytes, whichever comes first. ``delivery_timeout_ms`` bounds a record's
    delivery, retries included; the final flush should wait as long.
    """
    return {
        "batch.num.messages": options.produce_batch_size,
        "batch.size": options.produce_batch_bytes,
        "request.timeout.ms": options.produce_timeout_ms,
        "message.timeout.ms": options.delivery_timeout_ms,
    }


def original_offset_headers(offset: int, timestamp: int, partition: int) -> list[tuple[str, bytes]]:
    """The headers ``include_original_offset_header`` adds to a restored record, as the original tool."""
    return [
        (ORIGINAL_OFFSET_HEADER, offset.to_bytes(8, "little", signed=True)),
        (ORIGINAL_TIMESTAMP_HEADER, timestamp.to_bytes(8, "little", signed=True)),
        (SOURCE_PARTITION_HEADER, partition.to_bytes(4, "little", signed=True)),
    ]
