"""The message for an unknown config key: the closest known key, else the keys allowed there.

A typo must fail loudly (the original tool only warned and went on with the
default), and the fix should be one glance away.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def closest(key: str, allowed: Iterable[str]) -> str | None:
    """The allowed key ``key`` most likely misspells, if any is close enough."""
    names = sorted(set(allowed))
    matches = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
    if not matches:  # a different case or separator is still the same word
        folded = {n.lower().replace("-", "_"): n for n in names}
        match = folded.get(key.lower().replace("-", "_"))
        return match
    return matches[0]


def unknown_key_message(key: str, allowed: Iterable[str]) -> str:
    """``unknown key; did you mean 'x'?``, or the list of allowed keys when none is close."""
    names = sorted(set(allowed))
    match = closest(key, names)
    if match is not None:
        return f"unknown key; did you mean {match!r}?"
    return f"unknown key; the keys allowed here are: {', '.join(names)}"
