"""`wearables demo`: the whole system on one machine, with real outputs."""

from __future__ import annotations

import time
import uuid
from datetime import date, timedelta

from rich.table import Table

from cli.common import console, wait_for_stop_signal
from cli.follow import follow_pages
from cli.kafka_session import kafka_session
from cli.topics import create_all_topics
from connectors.simulator.cohort import SyntheticCohort
from models.daily import DailySummary
from models.ids import research_id
from models.providers import Provider
from models.raw import RawPage
from models.topics import raw_topic_suffix
from runtime.kafka import make_consumer, make_producer
from runtime.metrics import start_metrics_server
from runtime.settings import Settings
from streams.app import build_pipeline
from streams.runner import running

__all__ = ["run_demo"]


async def _publish(settings: Settings, bootstrap: str, cohort: SyntheticCohort, days: list[date]) -> int:
    """Publish each participant-day's steps and heart-rate pages as raw pages; return the count.

    Half the cohort is linked through the legacy Fitbit Web API, half through Google Health.
    """
    secret = settings.require_secret_key()
    producer = make_producer(settings, bootstrap)
    await producer.start()
    sent = 0
    try:
        for n, participant in enumerate(cohort.participant_ids):
            key = research_id(secret, participant).encode()
            for page in _pages(cohort, participant, days, google=n % 2 == 1):
                await producer.send(settings.topic(raw_topic_suffix(page.provider)), page.to_bytes(), key=key)
                sent += 1
        await producer.flush()
    finally:
        await producer.stop()
    return sent


def _pages(cohort: SyntheticCohort, participant: str, days: list[date], *, google: bool) -> list[RawPage]:
    zone, now = cohort.timezone(participant), time.time()
    pages = []
    for day in days:
        if google:
            bodies = (("steps", cohort.google_steps(participant, day)),
                      ("heart-rate", cohort.google_heart_rate(participant, day)))
            provider = Provider.GOOGLE_HEALTH
        else:
            bodies = (("activities-steps-intraday", cohort.fitbit_steps_intraday(participant, day)),
                      ("activities-heart-intraday", cohort.fitbit_heart_intraday(participant, day)))
            provider = Provider.FITBIT
        for data_type, body in bodies:
            pages.append(RawPage(provider=provider, data_type=data_type, date=day.isoformat(), body=body,
                                 detail=None if google else "1min", timezone=zone, fetched_at=now,
                                 request_id=f"demo-{uuid.uuid4().hex[:12]}", origin="simulator"))
    return pages


async def run_demo(settings: Settings, *, participants: int, days: int, timeout: float,
                   keep_running: bool, metrics_port: int) -> None:
    started = time.monotonic()
    cohort = SyntheticCohort(participants, seed=2026)
    first = date.today() - timedelta(days=days)
    day_list = [first + timedelta(days=i) for i in range(days)]
    async with kafka_session(settings, log_name="demo-broker.log") as bootstrap:
        created, present = await create_all_topics(settings, bootstrap)
        console.print(f"topics: {len(created)} created, {len(present)} already present")
        pipeline = build_pipeline(settings, bootstrap=bootstrap)
        start_metrics_server(metrics_port)
        console.print("starting the worker (joining its consumer group)")
        async with running(pipeline.app):
            expected = await _publish(settings, bootstrap, cohort, day_list)
            console.print(f"published {expected} raw pages ({participants} participants x {days} days x 2 data types)")
            await follow_pages(pipeline.progress, expected, timeout)
            summaries = await _latest_summaries(settings, bootstrap)
            _report(pipeline.progress.snapshot(), expected, time.monotonic() - started, metrics_port)
            _report_days(summaries)
            if keep_running:
                console.print("running; press Ctrl-C to stop")
                await wait_for_stop_signal()


async def _latest_summaries(settings: Settings, bootstrap: str) -> dict[str, DailySummary]:
    consumer = make_consumer(settings, settings.topic("daily"), bootstrap=bootstrap, group_id=f"demo-{uuid.uuid4()}")
    await consumer.start()
    latest: dict[str, DailySummary] = {}
    try:
        while batch := await consumer.getmany(timeout_ms=1000):
            for messages in batch.values():
                for message in messages:
                    summary = DailySummary.from_bytes(message.value)
                    latest[summary.key] = summary
    finally:
        await consumer.stop()
    return latest


def _report_days(summaries: dict[str, DailySummary]) -> None:
    days = list(summaries.values())
    valid = sum(d.valid_day for d in days)
    steps = sorted(d.steps for d in days)
    console.print(f"daily topic: {len(days)} participant-days summarized, {valid} valid days "
                  f"(>= 10 h with steps, 100-45,000 steps), median {steps[len(steps) // 2] if steps else 0} steps")
    table = Table("research_id", "date", "steps", "vendor_steps", "HR mean", "approx resting HR", "valid",
                  "revision", title="a few daily summaries")
    for day in days[:5]:
        table.add_row(day.research_id[:9] + "…", day.local_date, str(day.steps), str(day.vendor_steps),
                      f"{day.hr_mean:.1f}" if day.hr_mean else "-", str(day.approx_resting_hr), str(day.valid_day),
                      str(day.revision))
    console.print(table)


def _report(counts: dict[str, int], expected: int, elapsed: float, metrics_port: int) -> None:
    table = Table("", "count", title="worker: raw pages -> samples -> daily")
    table.add_row("raw pages processed", f"{counts.get('raw_pages', 0)} of {expected} published")
    table.add_row("samples published", str(counts.get("samples", 0)))
    table.add_row("samples rejected", str(counts.get("rejected", 0)))
    table.add_row("dead letters", str(counts.get("dead_letters", 0)))
    table.add_row("daily summaries emitted", str(counts.get("summaries", 0)))
    console.print(table)
    if metrics_port:
        console.print(f"metrics: http://127.0.0.1:{metrics_port}/metrics")
    console.print(f"demo finished in {elapsed:.1f}s")
