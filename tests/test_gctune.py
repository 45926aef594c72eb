"""The engines' GC threshold: raised while any engine runs, restored after the last one."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from libkb.gctune import ENGINE_GEN0_THRESHOLD, fewer_collections


@pytest.fixture(autouse=True)
def _restore_gc() -> Iterator[None]:
    saved, enabled = gc.get_threshold(), gc.isenabled()
    yield
    gc.set_threshold(*saved)
    if enabled:
        gc.enable()


def test_raised_while_running_and_restored_after_the_last() -> None:
    gc.set_threshold(700, 11, 12)
    with fewer_collections():
        assert gc.get_threshold() == (ENGINE_GEN0_THRESHOLD, 11, 12)
        with fewer_collections():  # a second engine in the same process
            assert gc.get_threshold()[0] == ENGINE_GEN0_THRESHOLD
        assert gc.get_threshold()[0] == ENGINE_GEN0_THRESHOLD  # the first still runs
    assert gc.get_threshold() == (700, 11, 12)


def test_restored_when_the_engine_fails() -> None:
    gc.set_threshold(700, 10, 10)
    with pytest.raises(RuntimeError), fewer_collections():
        raise RuntimeError("boom")
    assert gc.get_threshold() == (700, 10, 10)


def test_leaves_a_higher_threshold_or_disabled_collection_alone() -> None:
    gc.set_threshold(100_000, 10, 10)
    with fewer_collections():
        assert gc.get_threshold()[0] == 100_000
    assert gc.get_threshold()[0] == 100_000
    gc.set_threshold(0, 10, 10)
    with fewer_collections():
        assert gc.get_threshold()[0] == 0
    assert gc.get_threshold()[0] == 0


def test_a_threshold_the_application_set_meanwhile_is_kept() -> None:
    gc.set_threshold(700, 10, 10)
    with fewer_collections():
        gc.set_threshold(5_000, 10, 10)
    assert gc.get_threshold()[0] == 5_000
