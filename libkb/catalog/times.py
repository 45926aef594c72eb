"""Times as people and scripts read them in catalog output: ISO-8601, UTC, milliseconds."""

from __future__ import annotations

import datetime as dt


def iso_ms(ms: int | None) -> str | None:
    """Epoch milliseconds as an ISO-8601 UTC string (None and negatives stay None)."""
    if ms is None or ms < 0:
        return None
    return (
        dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )
