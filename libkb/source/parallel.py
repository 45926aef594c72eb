"""Reads of many small objects run on a few threads: object stores answer them in parallel far faster."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

_T = TypeVar("_T")
_R = TypeVar("_R")

READ_WORKERS = 8


def parallel_map(fn: Callable[[_T], _R], items: Iterable[_T], *, workers: int = READ_WORKERS) -> list[_R]:
    """``[fn(x) for x in items]`` on a few threads, results in input order."""
    items = list(items)
    if len(items) <= 1 or workers <= 1:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(min(workers, len(items)), "libkb-catalog") as pool:
        return list(pool.map(fn, items))
