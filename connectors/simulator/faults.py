"""Faults the simulator injects into data calls: added latency, hung calls, 5xx answers
(``World.faults``; ``wearables simulator --error-rate/--timeout-rate/--latency``)."""

from __future__ import annotations

import asyncio
import random

from aiohttp import web

from connectors.simulator.world import World
from runtime.metrics import counter

__all__ = ["injected_fault"]

FAULTS = counter("simulator_faults_total", "Faults the simulator injected", ["reason"])


async def injected_fault(world: World) -> web.Response | None:
    """Wait out the configured latency; then, by the configured rates, hang and answer 504, or
    answer 500/502/503 now; else None (answer the call)."""
    faults = world.faults
    if faults.latency_s:
        await asyncio.sleep(faults.latency_s)
    roll = random.random()
    if roll < faults.timeout_rate:
        FAULTS.labels("timeout").inc()
        world.stats["injected_timeouts"] += 1
        await asyncio.sleep(faults.hang_s)
        return web.json_response({"error": "hung"}, status=504)
    if roll < faults.timeout_rate + faults.error_rate:
        FAULTS.labels("server_error").inc()
        world.stats["injected_5xx"] += 1
        return web.json_response({"error": "injected"}, status=random.choice((500, 502, 503)))
    return None
