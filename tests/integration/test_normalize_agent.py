"""The normalize agent on the embedded broker: raw pages in, exact samples out, bad pages in dlq."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import date, timedelta

import pytest

from connectors.simulator.cohort import SyntheticCohort
from models.dead_letter import DeadLetter
from models.errors import Reason
from models.ids import research_id
from models.providers import Provider
from models.raw import RawPage
from models.samples import Metric, SampleBatch
from models.topics import raw_topic_suffix
from runtime.kafka import make_consumer, make_producer
from runtime.settings import Settings
from tests.conftest import worker

pytestmark = pytest.mark.integration

COHORT = SyntheticCohort(15, seed=5)
DAYS = [date(2026, 10, 20) + timedelta(days=i) for i in range(3)]


def _good_pages(secret: bytes) -> tuple[list[tuple[bytes, RawPage]], dict[Metric, int]]:
    """45 pages, and the samples they hold, counted from the cohort (not by the normalizer)."""
    pages, expected = [], {Metric.STEPS: 0, Metric.HEART_RATE: 0, Metric.VENDOR_DAILY: 0}
    for n, person in enumerate(COHORT.participant_ids):
        key, zone = research_id(secret, person).encode(), COHORT.timezone(person)
        day = DAYS[n % 3]
        steps, rates = COHORT.minute_steps(person, day), COHORT.minute_heart_rate(person, day)
        if n % 2 == 0:
            pages.append((key, RawPage(provider=Provider.FITBIT, data_type="activities-steps-intraday",
                                       date=day.isoformat(), body=COHORT.fitbit_steps_intraday(person, day),
                                       timezone=zone, detail="1min")))
            pages.append((key, RawPage(provider=Provider.FITBIT, data_type="activities-heart-intraday",
                                       date=day.isoformat(), body=COHORT.fitbit_heart_intraday(person, day),
                                       timezone=zone, detail="1min")))
            expected[Metric.STEPS] += len(steps)
            expected[Metric.VENDOR_DAILY] += 1  # the page's daily step total
        else:
            pages.append((key, RawPage(provider=Provider.GOOGLE_HEALTH, data_type="steps", date=day.isoformat(),
                                       body=COHORT.google_steps(person, day))))
            pages.append((key, RawPage(provider=Provider.GOOGLE_HEALTH, data_type="heart-rate",
                                       date=day.isoformat(), body=COHORT.google_heart_rate(person, day))))
            expected[Metric.STEPS] += sum(1 for s in steps if s > 0)
        expected[Metric.HEART_RATE] += sum(1 for r in rates if r is not None)
        # a third page per person: the same steps again for the next day, as a resync would
        later = day + timedelta(days=1)
        pages.append((key, RawPage(provider=Provider.FITBIT, data_type="activities-steps-intraday",
                                   date=later.isoformat(), body=COHORT.fitbit_steps_intraday(person, later),
                                   timezone=zone, detail="1min")))
        expected[Metric.STEPS] += 1440
        expected[Metric.VENDOR_DAILY] += 1
    return pages, expected


def _bad_pages(secret: bytes) -> list[tuple[bytes | None, bytes, Reason]]:
    key = research_id(secret, "P0000000001").encode()
    no_zone = RawPage(provider=Provider.FITBIT, data_type="activities-steps-intraday", date="2026-10-20",
                      body=COHORT.fitbit_steps_intraday(COHORT.participant_ids[0], DAYS[0])).to_bytes()
    not_json = RawPage(provider=Provider.GOOGLE_HEALTH, data_type="steps", date=None, body=b"<html>502</html>")
    return [
        (key, b"garbage without a metadata line", Reason.BAD_ENVELOPE),
        (key, b'{"v": 1, "provider": "fitbit", "data_type": "weight"}\n{}', Reason.UNKNOWN_DATA_TYPE),
        (key, no_zone, Reason.MISSING_FIELD),
        (key, not_json.to_bytes(), Reason.NOT_JSON),
        (None, not_json.to_bytes(), Reason.BAD_KEY),
    ]


async def _drain(settings: Settings, topic: str, *, until: Callable[[list[bytes]], bool],
                 timeout: float = 60) -> list[bytes]:
    consumer = make_consumer(settings, settings.topic(topic), group_id=f"check-{topic}")
    await consumer.start()
    values: list[bytes] = []
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while not until(values) and asyncio.get_running_loop().time() < deadline:
            batch = await consumer.getmany(timeout_ms=300)
            values += [m.value for messages in batch.values() for m in messages]
    finally:
        await consumer.stop()
    return values


async def test_fifty_pages_in_exact_samples_out_bad_pages_in_dlq(settings_factory: Callable[..., Settings]) -> None:
    settings = settings_factory()
    secret = settings.require_secret_key()
    good, expected = _good_pages(secret)
    bad = _bad_pages(secret)
    assert len(good) + len(bad) == 50

    async with worker(settings) as pipeline:
        producer = make_producer(settings)
        await producer.start()
        try:
            for n, (key, page) in enumerate(good):
                await producer.send(settings.topic(raw_topic_suffix(page.provider)), page.to_bytes(), key=key)
                if n % 9 == 4:  # bad pages interleaved with good ones
                    bad_key, value, _ = bad[n // 9]
                    await producer.send(settings.topic("raw.fitbit"), value, key=bad_key)
            await producer.flush()
            await pipeline.progress.wait_for("raw_pages", 50, timeout=90)

            # the agent is still running: one more good page is processed
            key, page = good[0]
            await producer.send(settings.topic(raw_topic_suffix(page.provider)), page.to_bytes(), key=key)
            await producer.flush()
            await pipeline.progress.wait_for("raw_pages", 51, timeout=30)
        finally:
            await producer.stop()

    total = sum(expected.values())
    batches = [SampleBatch.from_bytes(v) for v in await _drain(
        settings, "samples", until=lambda vs: sum(len(SampleBatch.from_bytes(v)) for v in vs) >= total + 1440)]
    counted: dict[Metric, int] = {}
    for batch in batches:
        counted[batch.metric] = counted.get(batch.metric, 0) + len(batch)
    resent = 1440 + 1  # good[0] once more: a Fitbit steps day and its daily total
    assert counted[Metric.STEPS] == expected[Metric.STEPS] + 1440
    assert counted[Metric.HEART_RATE] == expected[Metric.HEART_RATE]
    assert counted[Metric.VENDOR_DAILY] == expected[Metric.VENDOR_DAILY] + 1
    assert sum(counted.values()) == total + resent

    letters = [DeadLetter.from_bytes(v) for v in await _drain(settings, "dlq", until=lambda vs: len(vs) >= 5)]
    assert sorted(letter.reason for letter in letters) == sorted(reason for _, _, reason in bad)
    by_reason = {letter.reason: letter for letter in letters}
    assert by_reason[Reason.BAD_ENVELOPE].original == b"garbage without a metadata line"
    assert by_reason[Reason.MISSING_FIELD].detail.startswith("timezone:")
    assert all(letter.stage == "normalize" for letter in letters)
