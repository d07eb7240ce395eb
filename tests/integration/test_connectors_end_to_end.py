"""The connectors end to end on the embedded broker: participants linked through the simulator's
consent page, backfill plus webhook-driven updates, injected 5xx and duplicate syncs → every
simulated sample (steps, heart rate, sleep) reaches the daily summaries; the simulator saw no
rate-limit violation."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

import aiohttp
import pytest

from connectors.simulator.service import SimulatorOptions
from models.daily import DailySummary
from models.providers import Provider
from runtime.kafka import make_consumer
from runtime.settings import Settings
from tests.conftest import worker
from tests.connectors.stack import Stack, connector_stack
from tests.integration.pipeline import Truth, world_truth

pytestmark = pytest.mark.integration
# The 200 (about 4.5 minutes on this 2-core machine); E2E_PARTICIPANTS=40 for a quick run.
PARTICIPANTS = int(os.environ.get("E2E_PARTICIPANTS", "200"))
DAYS = 14




def _truth(stack: Stack, linked: list[tuple[str, Provider]]) -> Truth:
    """What the world says of every linked participant's simulated days."""
    return world_truth(stack.sim.world, stack.settings.require_secret_key(), [p for p, _ in linked])


async def _until_daily_matches(settings: Settings, truth: Truth, timeout: float) -> Truth:
    consumer = make_consumer(settings, settings.topic("daily"), group_id="e2e-check")
    await consumer.start()
    seen: Truth = {}
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            for messages in (await consumer.getmany(timeout_ms=500)).values():
                for message in messages:
                    summary = DailySummary.from_bytes(message.value)
                    seen[summary.key] = (summary.steps, summary.minutes_with_hr, summary.sleep_minutes_asleep)
            if all(seen.get(key) == value for key, value in truth.items()):
                break
    finally:
        await consumer.stop()
    return seen


@pytest.mark.timeout(120 + 6 * PARTICIPANTS)  # 200 participants: ~4.5 minutes here, so ample
async def test_cohort_backfill_and_webhooks_deliver_every_sample(settings_factory: Callable[..., Settings]) -> None:
    options = SimulatorOptions.complete(participants=PARTICIPANTS, days=DAYS, sync_interval_s=1.0, late_share=0.3,
                               duplicate_share=0.2, error_rate=0.10)
    # Polls are the fallback here, rare as in production: a Fitbit participant has 150 calls an
    # hour (clock-hour windows), the backfill takes ~65 and each poll ~13; polling every 20 s
    # spent the hour within minutes, and late data then waited for the next clock hour.
    async with connector_stack(settings_factory, options, backfill_days=DAYS + 2, poll_interval=300,
                               retry_base_delay=0.05, fetch_max_attempts=20, http_timeout=10) as stack, \
            worker(stack.settings):
        cohort = stack.sim.world.cohort.participant_ids
        linked = [(p, Provider.FITBIT if i % 2 else Provider.GOOGLE_HEALTH) for i, p in enumerate(cohort)]
        world, late = stack.sim.world, 0
        for participant, provider in linked:
            await stack.link(participant, provider)
            # looked at as each is linked: a late device catches up within seconds of its link
            late += world.account(provider, participant).synced_until < world.data_end
        assert late, "some devices must start days behind, so that webhooks have something to bring"
        truth = _truth(stack, linked)

        seen = await _until_daily_matches(stack.settings, truth, timeout=60 + 5 * PARTICIPANTS)
        async with aiohttp.ClientSession() as session, session.get(f"{stack.sim.url}/_sim/stats") as answer:
            stats = await answer.json()

    wrong = {k: (seen.get(k), v) for k, v in truth.items() if seen.get(k) != v}
    assert not wrong, f"{len(wrong)} of {len(truth)} participant-days differ, e.g. {list(wrong.items())[:3]}"
    assert len(truth) == PARTICIPANTS * DAYS
    assert sum(1 for _, _, asleep in truth.values() if asleep) > 0.9 * len(truth)  # sleep was part of it
    assert stats["rate_limit_violations"] == 0, {k: v for k, v in stats.items() if k.startswith("violations_")}
    assert stats["injected_5xx"] > 0  # the faults really happened
    assert stats["burst_syncs"] > 0 and stats["webhooks_acknowledged"] > 0  # late data came by webhook
    assert stats["duplicate_syncs"] > 0
