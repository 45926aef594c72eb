"""A retention policy: what rule chooses a backup's oldest segments for deletion, and what it protects.

``kafka-backup prune`` builds one from its flags, a backup run from
``backup.retention``. Selectors choose (``cutoff_ms``: older than a moment;
``max_total_bytes``: the oldest beyond a size cap); ``keep_segments``
protects the newest segments of each partition whatever the selectors say.
"""

from __future__ import annotations

from dataclasses import dataclass

from libkb.config.models import RetentionOptions
from libkb.errors import ConfigError

_WEEK_MS = 604_800_000
_UNITS = (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000))


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """Prune what a selector chooses, except the newest ``keep_segments`` of each partition.

    ``reason`` says why, in each pruned range it records (one rule applied
    again and again keeps extending one range).
    """

    #: Segments whose records are all older than this (epoch ms) go.
    cutoff_ms: int | None = None
    #: The oldest segments go until the backup's segments take at most this many bytes.
    max_total_bytes: int | None = None
    keep_segments: int = 0
    reason: str = ""

    def __post_init__(self) -> None:
        if self.cutoff_ms is None and self.max_total_bytes is None:
            raise ConfigError(
                "a prune needs a selector: an age (--older-than 30d, --before TIME, "
                "backup.retention.max_age) or a size cap (--max-total-bytes, "
                "backup.retention.max_total_bytes)"
            )
        if self.keep_segments < 0 or (self.max_total_bytes is not None and self.max_total_bytes < 0):
            raise ConfigError("keep_segments and max_total_bytes cannot be negative")

    @classmethod
    def from_options(cls, options: RetentionOptions, now_ms: int) -> RetentionPolicy:
        """``backup.retention`` as of ``now_ms``."""
        rules = []
        cutoff = None
        if options.max_age_ms is not None:
            cutoff = now_ms - options.max_age_ms
            rules.append(f"max_age {format_duration(options.max_age_ms)}")
        if options.max_total_bytes is not None:
            rules.append(f"max_total_bytes {options.max_total_bytes}")
        if options.keep_segments:
            rules.append(f"keep_segments {options.keep_segments}")
        return cls(
            cutoff,
            options.max_total_bytes,
            options.keep_segments,
            "backup.retention: " + ", ".join(rules),
        )


def format_duration(ms: int) -> str:
    """``2592000000`` -> ``30d``; ``93600000`` -> ``1d2h`` (whole seconds; what ``parse_duration`` reads)."""
    if ms and ms % _WEEK_MS == 0:
        return f"{ms // _WEEK_MS}w"
    left, parts = ms // 1000 * 1000, []
    for unit, size in _UNITS:
        if left >= size:
            parts.append(f"{left // size}{unit}")
            left %= size
    return "".join(parts) or "0s"
