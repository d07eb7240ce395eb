"""A cohort moving from the Fitbit Web API to Google Health, end to end on the embedded broker:
each participant keeps their research_id and their days; the Google backfill re-reads days the
Fitbit link already sent, and no day counts a sample twice."""

from __future__ import annotations

import time
import zoneinfo
from collections.abc import Callable
from datetime import datetime, timedelta

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

pytestmark = pytest.mark.integration
PARTICIPANTS, DAYS = 6, 5
Figures = tuple[int, int]  # steps, minutes with heart rate


def _truth(stack: Stack) -> dict[str, Figures]:
    world, secret = stack.sim.world, stack.settings.require_secret_key()
    truth = {}
    for participant in world.cohort.participant_ids:
        for n in range(DAYS):
            day = world.first_day + timedelta(days=n)
            steps, rates = world.series(participant, day)
            truth[f"{research_id(secret, participant)}|{day.isoformat()}"] = (sum(steps), sum(1 for r in rates if r))
    return truth


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
            return all(k in latest and (latest[k].steps, latest[k].minutes_with_hr) == v for k, v in truth.items())

        on_fitbit = await latest_daily(stack.settings, "generation-1", done=matches, timeout=120)
        assert matches(on_fitbit)
        for participant in cohort:
            await stack.link(participant, Provider.GOOGLE_HEALTH)

        def re_read(latest: dict[str, DailySummary]) -> bool:  # every day revised by the Google backfill
            return all(k in latest and latest[k].duplicates > on_fitbit[k].duplicates for k in truth)

        on_google = await latest_daily(stack.settings, "generation-2", done=re_read, timeout=120)
        google_devices = _device_days(stack)
        links = await stack.vault.links()
        records = await _participants(stack.settings)

    unread = {k: (on_fitbit[k].duplicates, on_google.get(k)) for k in truth
              if k not in on_google or on_google[k].duplicates <= on_fitbit[k].duplicates}
    assert not unread, f"the Google backfill did not re-read {len(unread)} days, e.g. {list(unread.items())[:2]}"
    for key, (steps, minutes) in truth.items():
        before, after = on_fitbit[key], on_google[key]
        assert (after.steps, after.minutes_with_hr) == (steps, minutes), key  # not doubled
        # the same minutes are duplicates, not new samples; only Google's view of the devices is
        # new (another device id), on the day they last synced
        assert after.samples == before.samples + google_devices.get(key, 0), key
    assert {link.provider for link in links} == {Provider.GOOGLE_HEALTH} and len(links) == PARTICIPANTS
    assert {link.research_id for link in links} == {key.partition("|")[0] for key in truth}
    latest = {r.research_id: r for r in records}  # the last record of each participant
    assert {r.api_generation for r in latest.values()} == {ApiGeneration.GOOGLE_HEALTH_V4}
