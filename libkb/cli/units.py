"""Byte counts for people, apart from :mod:`libkb.cli.render`.

A module of its own so that a job's progress lines can use it without
loading the catalog, which only the listing and describing commands need
(start-up time counts in every short job).
"""

from __future__ import annotations


def human_bytes(n: int | float) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")
