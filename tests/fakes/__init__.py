"""In-memory stand-ins for failing storage: the engines tested without a broker.

:class:`FaultyBackend` wraps a storage backend and fails chosen calls;
:func:`break_compression` fails a block compression.
"""

from __future__ import annotations

from tests.fakes.storage import DelegatingBackend, Fault, FaultyBackend, break_compression

__all__ = ["DelegatingBackend", "Fault", "FaultyBackend", "break_compression"]
