"""The circuit breaker per vendor: down after unavailable answers in a row, one probe at a time
with growing waits, up again at the first answer that is not "unavailable"."""

from __future__ import annotations

import asyncio

from prometheus_client import REGISTRY

from connectors.vendor_health import VendorHealth
from models.providers import Provider

G, F = Provider.GOOGLE_HEALTH, Provider.FITBIT


def _down_gauge(provider: Provider) -> float | None:
    return REGISTRY.get_sample_value("wearables_connector_vendor_down", {"provider": provider.value})


async def test_a_few_failures_are_one_calls_trouble_and_a_success_resets_the_count() -> None:
    health = VendorHealth(threshold=3)
    assert not health.failed(G) and not health.failed(G)
    health.succeeded(G)
    assert not health.failed(G) and not health.failed(G)  # counted from the success: still up
    assert not health.down(G) and not await health.wait(G)


async def test_unavailable_answers_in_a_row_take_the_vendor_down_until_a_probe_gets_through() -> None:
    outages = REGISTRY.get_sample_value("wearables_connector_vendor_outages_total", {"provider": G.value}) or 0.0
    health = VendorHealth(threshold=2, base_delay=0.05, max_delay=0.2)
    assert not health.failed(G)
    assert health.failed(G) and health.down(G) and not health.down(F)  # one vendor's outage only
    assert _down_gauge(G) == 1.0
    assert REGISTRY.get_sample_value("wearables_connector_vendor_outages_total", {"provider": G.value}) == outages + 1

    probes: list[int] = []

    async def caller(n: int) -> bool:
        probe = await health.wait(G)
        if probe:
            probes.append(n)
        return probe

    waiting = [asyncio.ensure_future(caller(n)) for n in range(5)]
    await asyncio.sleep(0.15)  # past the first wait: exactly one caller is let through, as the probe
    assert len(probes) == 1 and sum(t.done() for t in waiting) == 1
    health.failed(G)  # the probe failed: the next wait is longer and the next caller probes
    await asyncio.sleep(0.3)
    assert len(probes) == 2 and len(set(probes)) == 2
    health.succeeded(G)  # the second probe got through: everyone goes
    assert await asyncio.wait_for(asyncio.gather(*waiting), 1) is not None
    assert len(probes) == 2 and not health.down(G) and _down_gauge(G) == 0.0


async def test_a_probe_that_never_reports_expires_and_another_caller_probes() -> None:
    health = VendorHealth(threshold=1, base_delay=0.01, probe_timeout=0.1)
    assert health.failed(G)
    assert await asyncio.wait_for(health.wait(G), 1)  # the probe; it is cancelled, say, and never reports
    assert await asyncio.wait_for(health.wait(G), 1)  # after probe_timeout the next caller probes
