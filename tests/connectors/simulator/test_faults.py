"""Injected faults: latency always, then a hang answered 504 or a 5xx, by their rates."""

from __future__ import annotations

import time

from connectors.simulator.cohort import SyntheticCohort
from connectors.simulator.faults import injected_fault
from connectors.simulator.world import Faults, World


async def test_rates_decide_hang_error_or_nothing() -> None:
    world = World(SyntheticCohort(1), days=1)
    assert await injected_fault(world) is None
    world.faults = Faults(error_rate=1.0)
    errors = [await injected_fault(world) for _ in range(20)]
    assert {r.status for r in errors if r is not None} <= {500, 502, 503} and None not in errors
    world.faults = Faults(timeout_rate=1.0, hang_s=0.05, latency_s=0.05)
    started = time.monotonic()
    hung = await injected_fault(world)
    assert hung is not None and hung.status == 504 and time.monotonic() - started >= 0.1
    assert world.stats["injected_5xx"] == 20 and world.stats["injected_timeouts"] == 1
