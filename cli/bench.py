"""`wearables bench pipeline`: samples/s end to end and per stage, against a per-sample baseline
and a Polars batch limit, measured in one run on this machine. Prints a table, writes JSON."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import platform
import resource
import statistics
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import faust
import numpy as np
import orjson
from prometheus_client import REGISTRY
from rich.table import Table

from cli.common import console
from cli.topics import create_all_topics
from models.providers import Provider
from models.raw import RawPage
from models.topics import raw_topic_suffix
from runtime.broker import EmbeddedBroker
from runtime.kafka import TopicPlan, ensure_topics, make_producer
from runtime.settings import Settings
from streams.app import build_pipeline
from streams.daily.aggregate import DailyRules, summarize
from streams.daily.process import rows_of
from streams.normalize import normalize
from streams.runner import running

__all__ = ["BenchParams", "run_pipeline_bench"]

_TIMES_1MIN = [f"{m // 60:02d}:{m % 60:02d}:00" for m in range(1440)]
_TIMES_1S = [f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}" for s in range(86400)]


@dataclass(frozen=True, slots=True)
class BenchParams:
    participants: int = 1000
    days: int = 7
    hr_resolution: str = "1min"
    baseline_participants: int = 10
    seed: int = 1


def _day_pages(rng: np.random.Generator, person: int, day: date, hr_resolution: str) -> list[tuple[bytes, RawPage]]:
    """A participant-day as two legacy Fitbit intraday pages (steps, heart rate), vectorised values."""
    awake = (np.arange(1440) >= 420) & (np.arange(1440) < 1380)
    steps = np.where(awake & (rng.random(1440) < 0.4), rng.integers(0, 120, 1440), 0)
    if hr_resolution == "1s":
        rates = np.clip(62 + 10 * np.repeat(awake, 60) + rng.normal(0, 4, 86400), 40, 200).round().astype(int)
        times = _TIMES_1S
    else:
        rates = np.clip(62 + 10 * awake + rng.normal(0, 4, 1440), 40, 200).round().astype(int)
        times = _TIMES_1MIN
    key = f"R{person:020d}".encode()
    pages = []
    for data_type, values, clock, detail in (("activities-steps-intraday", steps, _TIMES_1MIN, "1min"),
                                             ("activities-heart-intraday", rates, times,
                                              hr_resolution.replace("1s", "1sec"))):
        resource_ = data_type.removesuffix("-intraday")
        dataset = [{"time": t, "value": v} for t, v in zip(clock, values.tolist(), strict=True)]
        body = orjson.dumps({resource_: [{"dateTime": day.isoformat()}],
                             f"{resource_}-intraday": {"dataset": dataset, "datasetInterval": 1,
                                                       "datasetType": "second" if detail == "1sec" else "minute"}})
        pages.append((key, RawPage(provider=Provider.FITBIT, data_type=data_type, date=day.isoformat(), body=body,
                                   detail=detail, timezone="America/New_York", origin="simulator")))
    return pages


def _generate(params: BenchParams, participants: int) -> list[tuple[bytes, RawPage]]:
    rng = np.random.default_rng(params.seed)
    first = date(2026, 10, 1)
    return [page for person in range(participants) for d in range(params.days)
            for page in _day_pages(rng, person, first + timedelta(days=d), params.hr_resolution)]


def _sample_count(pages: list[tuple[bytes, RawPage]]) -> int:
    return sum(orjson.loads(p.body)[f"{p.data_type}"]["dataset"].__len__() for _, p in pages)


async def _publish(settings: Settings, pages: list[tuple[bytes, RawPage]]) -> float:
    producer = make_producer(settings, linger_ms=20)
    await producer.start()
    started = time.perf_counter()
    try:
        topic = settings.topic(raw_topic_suffix(Provider.FITBIT))
        pending = []
        for key, page in pages:
            pending.append(await producer.send(topic, page.to_bytes(), key=key))
            if len(pending) >= 2000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return time.perf_counter() - started


def _histogram_sum(name: str) -> float:
    return sum(s.value for m in REGISTRY.collect() if m.name == name for s in m.samples if s.name.endswith("_sum"))


async def _pipeline(settings: Settings, pages: list[tuple[bytes, RawPage]], samples: int) -> dict[str, Any]:
    pipeline = build_pipeline(settings)
    norm_before, daily_before = _histogram_sum("wearables_normalize_page_seconds"), _histogram_sum(
        "wearables_daily_batch_seconds")
    async with running(pipeline.app):
        started = time.perf_counter()
        progress = pipeline.progress
        with console.status("") as status:
            while True:
                done = progress.get("raw_pages") >= len(pages) and \
                    progress.get("sample_batches") >= progress.get("batches_out") > 0
                status.update(f"pipeline: {progress.get('raw_pages')}/{len(pages)} pages normalized, "
                              f"{progress.get('sample_batches')}/{progress.get('batches_out')} batches summarized")
                if done:
                    break
                await asyncio.sleep(0.05)
        elapsed = time.perf_counter() - started
        states = [v for v in pipeline.app.tables["days"].values()]
    return {
        "elapsed_s": elapsed, "end_to_end_samples_per_s": samples / elapsed,
        "normalize_samples_per_s":
            samples / max(_histogram_sum("wearables_normalize_page_seconds") - norm_before, 1e-9),
        "daily_samples_per_s": samples / max(_histogram_sum("wearables_daily_batch_seconds") - daily_before, 1e-9),
        "state_bytes_per_participant_day": statistics.fmean(len(s) for s in states) if states else 0.0,
        "participant_days": len(states), "summaries": progress.get("summaries"),
    }


async def _baseline(settings: Settings, pages: list[tuple[bytes, RawPage]]) -> dict[str, Any]:
    """The same day summaries from a Faust pipeline that carries one Kafka record per sample."""
    topic_name = settings.topic("bench.per-sample")
    await ensure_topics(settings, [TopicPlan(topic_name, settings.partitions),
                                   TopicPlan(f"{settings.topic_prefix}baseline-sums-changelog", settings.partitions,
                                             True),
                                   TopicPlan(f"{settings.topic_prefix}baseline-__assignor-__leader", 1)])
    records = []
    for key, page in pages:
        for batch in normalize(page, key.decode(), secret=b"bench").batches:
            for ts, value in zip(batch.timestamps, batch.values, strict=True):
                record = {"day": batch.local_date, "m": batch.metric.value, "t": ts, "v": value}
                records.append((key, orjson.dumps(record)))
    producer = make_producer(settings, linger_ms=20, max_batch_size=1 << 16)
    await producer.start()
    for key, value in records:
        await producer.send(topic_name, value, key=key)
    await producer.flush()
    await producer.stop()
    app = faust.App(f"{settings.topic_prefix}baseline", broker=f"kafka://{settings.kafka_bootstrap_servers}",
                    store="memory://", web_enabled=False, topic_allow_declare=False, autodiscover=False,
                    broker_session_timeout=settings.kafka_session_timeout, broker_heartbeat_interval=1.0,
                    producer_max_batch_size=1, table_standby_replicas=0, loop=asyncio.get_running_loop())
    sums = app.Table("sums", default=float, partitions=settings.partitions)
    topic = app.topic(topic_name, value_serializer="json")
    seen = [0]

    @app.agent(topic)
    async def per_sample(stream: Any) -> None:
        async for event in stream.events():  # one event, one table update per sample
            value = event.value
            day_key = f"{event.message.key.decode()}|{value['day']}|{value['m']}"
            sums[day_key] += value["v"]
            seen[0] += 1

    app.finalize()
    async with running(app):
        started = time.perf_counter()
        while seen[0] < len(records):
            await asyncio.sleep(0.05)
        elapsed = time.perf_counter() - started
    return {"baseline_samples": len(records), "baseline_samples_per_s": len(records) / elapsed}


def _limit(pages: list[tuple[bytes, RawPage]], samples: int) -> dict[str, Any]:
    """The same summaries from one Polars query over the samples already in memory."""
    rows = rows_of(b for key, page in pages for b in normalize(page, key.decode(), secret=b"bench").batches)
    rows = rows.unique(subset=["key", "metric", "label", "ts"], keep="last")
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        summarize(rows, DailyRules())
        timings.append(time.perf_counter() - started)
    return {"limit_samples_per_s": samples / statistics.median(timings)}


def _peak_rss(broker: EmbeddedBroker | None) -> int:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    if broker is not None and broker.pid:
        for line in Path(f"/proc/{broker.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return own + int(line.split()[1]) * 1024
    return own


async def run_pipeline_bench(settings: Settings, params: BenchParams, out: Path | None) -> dict[str, Any]:
    broker = None if settings.kafka_bootstrap_servers else await EmbeddedBroker().start()
    try:
        if broker is not None:
            settings = settings.with_overrides(kafka_bootstrap_servers=broker.bootstrap)
        await create_all_topics(settings)
        with console.status(f"generating {params.participants} x {params.days} participant-days"):
            pages = _generate(params, params.participants)
            samples = _sample_count(pages)
        console.print(f"generated {len(pages)} raw pages, {samples:,} samples")
        publish_s = await _publish(settings, pages)
        console.print(f"published in {publish_s:.1f}s")
        result: dict[str, Any] = {"parameters": {**dataclasses.asdict(params), "partitions": settings.partitions,
                                                 "store": settings.store, "cpu_count": os.cpu_count(),
                                                 "python": platform.python_version()},
                                  "samples": samples, "pages": len(pages), "publish_s": publish_s}
        result |= await _pipeline(settings, pages, samples)
        small = _generate(params, params.baseline_participants)
        console.print("measuring the per-sample baseline and the Polars limit")
        result |= await _baseline(settings, small)
        result |= _limit(pages, samples)
        result["baseline_ratio"] = result["end_to_end_samples_per_s"] / result["baseline_samples_per_s"]
        result["limit_ratio"] = result["end_to_end_samples_per_s"] / result["limit_samples_per_s"]
        result["peak_rss_bytes"] = _peak_rss(broker)
    finally:
        if broker is not None:
            broker.stop()
    _print(result)
    if out is not None:
        out.write_text(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
        console.print(f"wrote {out}")
    return result


def _print(result: dict[str, Any]) -> None:
    table = Table("figure", "value", title="wearables bench pipeline")
    for key in ("samples", "end_to_end_samples_per_s", "normalize_samples_per_s", "daily_samples_per_s",
                "baseline_samples_per_s", "baseline_ratio", "limit_samples_per_s", "limit_ratio",
                "state_bytes_per_participant_day", "peak_rss_bytes", "elapsed_s"):
        value = result.get(key)
        table.add_row(key, f"{value:,.2f}" if isinstance(value, float) else f"{value:,}")
    console.print(table)


