"""A cohort moving from the Fitbit Web API to Google Health, end to end on the embedded broker:
each participant keeps their research_id and their days; the Google backfill re-reads days the
Fitbit link already sent, and no day counts a sample twice."""

from __future__ import annotations

import time
import zoneinfo
from collections.abc import Callable
from datetime import datetime

import pytest

from connectors.simulator.devices import paired_devices
from connectors.simulator.service import SimulatorOptions
from models.daily import DailySummary
from models.ids import research_id
from models.participants import ApiGeneration, ParticipantLink
from models.providers import Provider
from runtime.kafka import make_consumer
from runtime.settings import Settings
from tests.conftest import worker
from tests.connectors.stack import Stack, connector_stack
from tests.integration.daily_topic import latest_daily
from tests.integration.pipeline import Truth, world_truth

pytestmark = pytest.mark.integration
PARTICIPANTS, DAYS = 6, 5


def _truth(stack: Stack) -> Truth:
    """Steps, minutes with heart rate and minutes asleep of every simulated day."""
    return world_truth(stack.sim.world, stack.settings.require_secret_key(), stack.sim.world.cohort.participant_ids)


def _device_days(stack: Stack) -> dict[str, int]:
    """Per research_id|local date, how many Google devices last synced on it."""
    world, secret, now = stack.sim.world, stack.settings.require_secret_key(), time.time()
    days: dict[str, int] = {}
    for participant in world.cohort.participant_ids:
        account = world.account(Provider.GOOGLE_HEALTH, participant)
        for device in paired_devices(world, account, now):
            local = datetime.fromtimestamp(device.last_sync, zoneinfo.ZoneInfo(account.timezone)).date()
            key = f"{research_id(secret, participant)}|{local.isoformat()}"
            days[key] = days.get(key, 0) + 1
    return days


def _figures(summary: DailySummary) -> tuple[int, int, int | None]:
    return summary.steps, summary.minutes_with_hr, summary.sleep_minutes_asleep


def _new_devices(before: DailySummary, after: DailySummary, key: str,
                 views: tuple[dict[str, int], ...]) -> bool:
    """Whether the day gained exactly the Google devices of one view as new samples."""
    return after.samples - before.samples in {view.get(key, 0) for view in views}


async def _participants(settings: Settings) -> list[ParticipantLink]:
    consumer = make_consumer(settings, settings.topic("participants"), group_id="generation-participants")
    await consumer.start()
    try:
        batch = await consumer.getmany(timeout_ms=3000)
        return [ParticipantLink.from_bytes(m.value) for messages in batch.values() for m in messages]
    finally:
        await consumer.stop()


@pytest.mark.timeout(300)
async def test_a_move_to_google_health_keeps_every_day_counted_once(settings_factory: Callable[..., Settings]
                                                                     ) -> None:
    options = SimulatorOptions.complete(participants=PARTICIPANTS, days=DAYS, sync_interval_s=1.0, late_share=0.0,
                               duplicate_share=0.0)
    async with connector_stack(settings_factory, options, backfill_days=DAYS + 1, poll_interval=3600,
                               retry_base_delay=0.05) as stack, worker(stack.settings):
        truth = _truth(stack)
        cohort = stack.sim.world.cohort.participant_ids
        for participant in cohort:
            await stack.link(participant, Provider.FITBIT)

        def matches(latest: dict[str, DailySummary]) -> bool:
            return all(k in latest and _figures(latest[k]) == v for k, v in truth.items())

        # Sleep too, and a quiet topic: sleep and the vendor's daily figures come in their own
        # pages, and a day the Google backfill first completes would count them as new samples.
        on_fitbit = await latest_daily(stack.settings, "generation-1", done=matches, timeout=120, settle_s=5)
        assert matches(on_fitbit)
        # A tracker's last sync moves on in quarter hours (the simulator's devices), so the day a
        # device is filed under may move between the Google fetch and this test's look: either
        # view of the devices, from before the Google link or from now, is a right answer.
        devices_before = _device_days(stack)
        for participant in cohort:
            await stack.link(participant, Provider.GOOGLE_HEALTH)

        def device_views() -> tuple[dict[str, int], dict[str, int]]:
            return devices_before, _device_days(stack)

        def re_read(latest: dict[str, DailySummary]) -> bool:
            """Every day revised by the Google backfill, and the Google devices counted (the
            paired-devices page may be read after the steps and heart-rate pages)."""
            views = device_views()
            return all(k in latest and latest[k].duplicates > on_fitbit[k].duplicates
                       and _new_devices(on_fitbit[k], latest[k], k, views) for k in truth)

        on_google = await latest_daily(stack.settings, "generation-2", done=re_read, timeout=120)
        views = device_views()
        links = await stack.vault.links()
        records = await _participants(stack.settings)

    unread = {k: (on_fitbit[k].duplicates, on_google.get(k)) for k in truth
              if k not in on_google or on_google[k].duplicates <= on_fitbit[k].duplicates}
    assert not unread, f"the Google backfill did not re-read {len(unread)} days, e.g. {list(unread.items())[:2]}"
    for key, figures in truth.items():
        before, after = on_fitbit[key], on_google[key]
        assert _figures(after) == figures, key  # not doubled
        # the same minutes are duplicates, not new samples; only Google's view of the devices is
        # new (another device id), on the day they last synced
        assert _new_devices(before, after, key, views), (key, after.samples - before.samples,
                                                         [view.get(key, 0) for view in views])
    assert {link.provider for link in links} == {Provider.GOOGLE_HEALTH} and len(links) == PARTICIPANTS
    assert {link.research_id for link in links} == {key.partition("|")[0] for key in truth}
    latest = {r.research_id: r for r in records}  # the last record of each participant
    assert {r.api_generation for r in latest.values()} == {ApiGeneration.GOOGLE_HEALTH_V4}
