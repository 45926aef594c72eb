"""Config messages: an unknown key's closest known key, and a validator's words made plain.

A typo must fail loudly (the original tool only warned and went on with the
default), and the fix should be one glance away.
"""

from __future__ import annotations

import difflib
import re
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


# marshmallow's default wording -> what the value must be and what to do about it.
_PLAIN = {
    "Missing data for required field.": "required: this key is missing; add it",
    "Field may not be null.": "has no value; give one, or remove the key to use the default",
    "Not a valid string.": "must be text (a string)",
    "Not a valid integer.": "must be a whole number (such as 5)",
    "Not a valid number.": "must be a number (such as 1.5)",
    "Not a valid boolean.": "must be true or false",
    "Not a valid list.": "must be a list (- item lines, or [a, b])",
    "Not a valid mapping type.": "must be a mapping (key: value lines)",
    "Invalid input type.": "must be a mapping (key: value lines)",
    "Shorter than minimum length 1.": "must not be empty",
    "Invalid value.": "is not a valid value; see the configuration reference",
}
_MUST = re.compile(r"^(Must|Shorter|Longer|Length) ")


def plain_message(message: str) -> str:
    """A validator's message in libkb's words: lower case, no full stop, saying what to give.

    Every config error goes through here (the job file's sections and ``storage:``),
    so a missing or mistyped value reads like every other libkb message.
    """
    if message in _PLAIN:
        return _PLAIN[message]
    if _MUST.match(message):  # Range, OneOf, Length: "Must be one of: a, b."
        text = message[0].lower() + message[1:]
        return text[:-1] if text.endswith(".") else text
    return message
