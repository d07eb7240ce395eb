"""Garbage-collector settings for throughput processes (workers, the benchmark's baseline).

Vendor JSON arrives as millions of short-lived dicts and ints, so CPython's default
generation-0 threshold (700 allocations) runs a collection every few hundred samples, each one
walking the young objects, and older generations fill with Faust's and Polars' long-lived
objects that full collections walk again and again. Measured on the normalize stage alone:
~20% of its CPU time. A larger threshold plus ``gc.freeze()`` of everything alive after
start-up keeps reference-cycle collection but makes it rare and cheap.
"""

from __future__ import annotations

import gc

__all__ = ["tune_gc"]


def tune_gc(gen0_threshold: int) -> None:
    """Freeze what exists now (imports, app objects) and collect generation 0 every
    ``gen0_threshold`` allocations (0 keeps CPython's defaults)."""
    if gen0_threshold <= 0:
        return
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(gen0_threshold, gen1, gen2)
