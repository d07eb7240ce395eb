"""tune_gc: the worker's collector settings (measured: ~20% of the normalize stage's CPU at defaults)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from runtime.gc_tuning import tune_gc
from runtime.settings import Settings, load_settings


@pytest.fixture
def restore_gc() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*before)


@pytest.mark.usefixtures("restore_gc")
def test_tune_gc_raises_generation_0_threshold_and_freezes_what_exists() -> None:
    gc.unfreeze()
    gen1, gen2 = gc.get_threshold()[1:]
    tune_gc(50_000)
    assert gc.get_threshold() == (50_000, gen1, gen2)
    assert gc.get_freeze_count() > 1000  # the interpreter's and the imported modules' objects


@pytest.mark.usefixtures("restore_gc")
def test_zero_keeps_cpython_defaults() -> None:
    gc.unfreeze()
    before = gc.get_threshold()
    tune_gc(0)
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_workers_tune_by_default_and_it_can_be_switched_off() -> None:
    assert Settings().gc_gen0_threshold == 50_000
    assert load_settings({"WEARABLES_GC_GEN0_THRESHOLD": "0"}).gc_gen0_threshold == 0
