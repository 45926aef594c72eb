"""The two budgets of every fuzz test: a short deterministic one for CI, a long random one by hand.

``fuzz(body, strategies)`` makes both tests from one property: the CI one runs
``examples`` inputs chosen by a fixed seed (``derandomize``), so it takes a
few seconds and fails the same way on every machine; the ``soak`` one runs
``LIBKB_FUZZ_EXAMPLES`` (default 20000) random inputs and is left out of
``scripts/test``. Run it by hand with statistics::

    LIBKB_FUZZ_EXAMPLES=50000 .venv/bin/pytest -m soak tests/fuzz --hypothesis-show-statistics
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

_QUIET = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]


def fuzz(
    body: Callable[..., None], *strategies: st.SearchStrategy[Any], examples: int = 150
) -> tuple[Callable[..., None], Callable[..., None]]:
    """(the CI test, the soak test) of ``body`` over ``strategies``."""
    ci = settings(
        max_examples=examples, derandomize=True, database=None, deadline=None, suppress_health_check=_QUIET
    )(given(*strategies)(body))
    soak_examples = int(os.environ.get("LIBKB_FUZZ_EXAMPLES", "20000"))
    soak = settings(max_examples=soak_examples, database=None, deadline=None, suppress_health_check=_QUIET)(
        given(*strategies)(body)
    )
    return ci, pytest.mark.soak(soak)
