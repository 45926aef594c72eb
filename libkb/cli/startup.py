"""The ``kafka-backup`` process's start-up: CPU that every job pays on one core before any record moves.

Why this module exists: a backup reads nothing until its modules are loaded
(0.25-0.30 s of one core, the other idle), so each millisecond taken off the
start-up is a millisecond off every job (bench/README.rst, session 21). Two
things are done, only in the process the script owns (a program that embeds
libkb keeps its own settings):

- **The cyclic collector waits until the modules are loaded.** Importing
  creates some 40,000 objects the collector tracks, and it ran 94 times
  while they were made (15 ms); none of them is garbage. When the command
  starts they are moved out of the collector's sight for good
  (:func:`gc.freeze`: they live as long as the process) and collection
  resumes.
- **marshmallow's e-mail pattern is compiled when first used.** Its module
  compiles a case-insensitive domain pattern over most of Unicode when
  imported: 30 ms, a tenth of the start-up, for a validator libkb never
  uses. While marshmallow is imported, that one pattern is made as a
  :class:`DeferredPattern`, which compiles it on its first use.
"""

from __future__ import annotations

import gc
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

#: The character range of marshmallow's e-mail domain pattern: only patterns containing it are deferred.
DEFERRED_RANGE = "\u00a1-\uffff"

#: Whether :func:`begin` ran: this is the script's process, whose collector libkb may pause.
_script = False


class DeferredPattern:
    """A regular expression compiled on first use, otherwise used as the compiled pattern would be."""

    __slots__ = ("_args", "_compiled")
    #: Read by ``abc`` on every value of a class body being created; without it that read compiles.
    __isabstractmethod__ = False

    def __init__(self, pattern: str, flags: int | re.RegexFlag, compile_: Callable[..., re.Pattern[str]]):
        self._args = (pattern, flags, compile_)
        self._compiled: re.Pattern[str] | None = None

    def __getattr__(self, name: str) -> Any:
        compiled = self._compiled
        if compiled is None:
            pattern, flags, compile_ = self._args
            compiled = self._compiled = compile_(pattern, flags)
        return getattr(compiled, name)


@contextmanager
def deferred_compiles(marker: str = DEFERRED_RANGE) -> Iterator[None]:
    """While inside, ``re.compile`` of a pattern containing ``marker`` returns a :class:`DeferredPattern`."""
    real = re.compile

    def compile_(pattern: Any, flags: int | re.RegexFlag = 0) -> Any:
        if isinstance(pattern, str) and marker in pattern:
            return DeferredPattern(pattern, flags, real)
        return real(pattern, flags)

    re.compile = compile_
    try:
        yield
    finally:
        re.compile = real


def begin() -> None:
    """Before the first import of the rest of libkb: pause the collector, load marshmallow."""
    global _script
    _script = True
    gc.disable()
    if "marshmallow" not in sys.modules:
        with deferred_compiles():
            import marshmallow  # noqa: F401  (its validators' module is what compiles the pattern)


def end() -> None:
    """When the command starts: what start-up made is set aside for good, and collection resumes."""
    if _script:
        gc.freeze()
        gc.enable()


@contextmanager
def loading() -> Iterator[None]:
    """Around a command's own imports (an engine's): the collector paused, then what they made set aside."""
    if not _script:
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        end()
