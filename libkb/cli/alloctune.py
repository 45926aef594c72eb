"""glibc's allocator kept from returning the engines' large buffers to the system after each use.

librdkafka reads each fetch response (several MiB) into a buffer of its own,
and the backup frees it on another thread once the records are packed; blocks
and compressed output are 1 MiB each. glibc serves allocations that large
with ``mmap`` and gives them back with ``munmap`` (or trims its heaps as soon
as 2x the last such size is free on top), so every response was new pages to
fault in and zero, and each ``munmap`` took the process's memory-map lock that
the other threads' page faults wait on. With the thresholds below the pages
are reused: a backup of 1 GiB of the cyclic pool at 8 partitions took 1.55-1.62 s
instead of 1.63-1.74 s, with 70,000 page faults instead of 96,000-143,000
(bench/README.rst, session 16). The cost is the free memory glibc keeps: peak
RSS 20-35 MiB higher.

Only ``kafka-backup backup`` sets this (the command owns its process; a program
that embeds libkb keeps its own allocator settings). Restores are left as they
were: their peak RSS rose by 35-50 MiB, to 501 MiB for random bytes at 8
partitions, for a gain only on CDC records (about 6 %). Thresholds the user
set (``GLIBC_TUNABLES``' ``glibc.malloc.mmap_threshold`` or ``trim_threshold``,
or glibc's older ``MALLOC_MMAP_THRESHOLD_`` and ``MALLOC_TRIM_THRESHOLD_``) are
left as they are.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

#: Allocations up to this size come from the heap, not a mapping of their own (glibc's largest).
MMAP_THRESHOLD = 32 << 20
#: Free memory on top of a heap that glibc keeps rather than returning.
TRIM_THRESHOLD = 64 << 20


_TUNABLES = ("glibc.malloc.mmap_threshold", "glibc.malloc.trim_threshold")
_VARIABLES = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")


def user_has_malloc_settings(environ: Mapping[str, str]) -> bool:
    """Whether the environment already sets either threshold (then libkb sets neither)."""
    tunables = environ.get("GLIBC_TUNABLES", "")
    return any(t in tunables for t in _TUNABLES) or any(v in environ for v in _VARIABLES)


def tune_allocator(environ: Mapping[str, str] = os.environ) -> bool:
    """Set the thresholds above unless the user set their own; whether they were set."""
    if user_has_malloc_settings(environ):
        return False
    try:
        from libkb.format._packer import set_malloc_thresholds
    except ImportError:  # built without the C extension
        return False
    return set_malloc_thresholds(MMAP_THRESHOLD, TRIM_THRESHOLD)
