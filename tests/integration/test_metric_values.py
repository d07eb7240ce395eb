"""The metrics say what happened, in numbers: a run of known size on the embedded broker, with
the worker, the sink and the lag monitor running, then a stalled worker.

Counters are read as the change over the run (other tests share the process's registry).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from models.ids import research_id
from runtime.kafka import make_producer
from runtime.lag import LagMonitor
from runtime.settings import Settings
from sinks.dataset import Dataset
from sinks.runner import SinkRunner
from sinks.tables import TABLES
from tests.builders import fitbit_minute_pages, fitbit_page, send_minute_pages
from tests.conftest import wait_until, worker

pytestmark = pytest.mark.integration
PARTICIPANTS, DAYS, BAD_PAGES = 4, 2, 3
MINUTES = 1440


def _value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(f"wearables_{name}", labels) or 0.0


def _lag(settings: Settings, group: str, topic: str) -> float:
    total = 0.0
    for partition in range(settings.kafka.partitions):
        total += _value("consumer_group_lag", group=group, topic=settings.topic(topic), partition=str(partition))
    return total



@pytest.mark.timeout(240)
async def test_counters_lag_and_freshness_follow_a_run_of_known_size(settings_factory: Callable[..., Settings],
                                                                      tmp_path: Path) -> None:
    settings = settings_factory(sink_flush_interval=0.5, finalize_interval=3600, commit_interval=0.5)
    secret = settings.require_secret_key()
    rids = [research_id(secret, f"P{n:03d}") for n in range(PARTICIPANTS)]
    first = date.today() - timedelta(days=DAYS + 1)
    counters = {
        "pages": ("normalize_pages_total", {"provider": "fitbit", "outcome": "normalized"}),
        "bad_pages": ("normalize_pages_total", {"provider": "fitbit", "outcome": "dead_letter"}),
        "bad_envelope": ("dead_letters_total", {"stage": "normalize", "reason": "bad_envelope"}),
        "steps": ("normalize_samples_total", {"provider": "fitbit", "metric": "steps"}),
        "heart": ("normalize_samples_total", {"provider": "fitbit", "metric": "heart_rate"}),
        "new": ("dedup_samples_total", {"outcome": "new"}),
        "steps_rows": ("sink_rows_total", {"table": "steps_intraday"}),
        "heart_rows": ("sink_rows_total", {"table": "heart_rate_minute_level"}),
        "updated": ("daily_summaries_total", {"status": "updated"}),
        "sink_daily": ("sink_records_total", {"topic": "daily", "outcome": "written"}),
    }
    before = {name: _value(metric, **labels) for name, (metric, labels) in counters.items()}

    def delta(name: str) -> float:
        metric, labels = counters[name]
        return _value(metric, **labels) - before[name]

    producer = make_producer(settings)
    lag = LagMonitor(settings, interval=0.5)
    async with worker(settings) as pipeline, SinkRunner(settings, location=str(tmp_path / "dataset")).running(), \
            lag.running():
        await producer.start()
        try:
            await send_minute_pages(producer, settings.topic("raw.fitbit"), rids, first, DAYS)
            for _ in range(BAD_PAGES):
                await producer.send(settings.topic("raw.fitbit"), b"not json at all", key=rids[0].encode())
            await producer.flush()
            pages = PARTICIPANTS * DAYS * 2
            await wait_until(lambda: delta("heart_rows") >= PARTICIPANTS * DAYS * MINUTES, 120,
                            "the sink to write every heart-rate minute")
            # the numbers the input makes: a page per day and type, every minute a sample, written once
            assert delta("pages") == pages and delta("bad_pages") == BAD_PAGES and delta("bad_envelope") == BAD_PAGES
            assert delta("steps") == delta("heart") == PARTICIPANTS * DAYS * MINUTES
            # every sample is new once: the minutes, and the vendor's daily step total of each steps page
            assert delta("new") == 2 * PARTICIPANTS * DAYS * MINUTES + PARTICIPANTS * DAYS
            assert delta("steps_rows") == delta("heart_rows") == PARTICIPANTS * DAYS * MINUTES
            # every summary the worker emitted reached the sink, and the table has one row per participant-day
            await wait_until(lambda: delta("sink_daily") == delta("updated") > 0, 30, "the sink to read every summary")
            days = Dataset(str(tmp_path / "dataset")).read_all(TABLES["daily_summary"])
            assert days.height == PARTICIPANTS * DAYS and set(days["person_id"]) == set(rids)
            newest = _value("daily_newest_sample_timestamp_seconds", provider="fitbit")
            last_minute = int(time.mktime((first + timedelta(days=DAYS - 1)).timetuple()))  # local midnight, roughly
            assert newest >= last_minute  # the last day's samples were summarized

            # drained: every group's lag reaches 0, read from the broker
            await wait_until(lambda: _lag(settings, settings.app_id, "raw.fitbit") == 0
                            and _lag(settings, f"{settings.kafka.topic_prefix}sink", "intraday") == 0
                            and _value("topic_end_offset", topic=settings.topic("raw.fitbit"), partition="0") > 0,
                            60, "the lag to reach 0")

            # a stall: the worker stops, pages keep coming; lag grows, freshness ages
            await pipeline.app.stop()
            stalled_at, age = time.time(), time.time() - newest
            more = 6
            for n in range(more):
                day = first + timedelta(days=DAYS)
                data_type, body = fitbit_minute_pages(day, n)[0]
                await producer.send(settings.topic("raw.fitbit"), fitbit_page(data_type, body, day=day).to_bytes(),
                                    key=rids[n % PARTICIPANTS].encode())
            await producer.flush()
            await wait_until(lambda: _lag(settings, settings.app_id, "raw.fitbit") == more, 30,
                            f"the worker's lag to grow to {more}")
            await asyncio.sleep(1.0)
            assert _value("daily_newest_sample_timestamp_seconds", provider="fitbit") == newest  # nothing new
            assert time.time() - newest > age + (time.time() - stalled_at) - 0.01  # freshness keeps ageing
        finally:
            await producer.stop()
