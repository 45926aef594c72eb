"""The backup engine: Kafka partitions into compressed segments in storage."""
