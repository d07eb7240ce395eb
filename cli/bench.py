"""`wearables bench pipeline`: samples/s end to end and per stage, against a per-sample baseline
and a Polars batch limit, measured in one run on this machine. Prints a table, writes JSON."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import orjson
from aiokafka import TopicPartition
from rich.table import Table

from cli.bench_baseline import baseline_topic, baseline_topics
from cli.children import ChildProcess, cpu_seconds, peak_rss, running_together, total
from cli.console import console, progress
from cli.kafka_session import kafka_session
from cli.topics import all_topic_plans, create_all_topics
from models.providers import Provider
from models.raw import RawPage
from models.topics import raw_topic_suffix
from runtime.kafka import delete_topics, ensure_topics, make_consumer, make_producer
from runtime.settings import Settings
from streams.daily.aggregate import DailyRules, summarize
from streams.daily.process import rows_of
from streams.normalize import normalize

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
    workers: int = 2
    runs: int = 3


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


async def _publish(settings: Settings, records: list[tuple[bytes, bytes]]) -> float:
    producer = make_producer(settings, linger_ms=20)
    await producer.start()
    started = time.perf_counter()
    try:
        topic = settings.topic(raw_topic_suffix(Provider.FITBIT))
        pending = []
        for key, value in records:
            pending.append(await producer.send(topic, value, key=key))
            if len(pending) >= 2000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return time.perf_counter() - started


async def _pipeline(settings: Settings, records: list[tuple[bytes, bytes]], samples: int,
                    workers: int, broker_pid: int | None) -> dict[str, Any]:
    """Start ``workers`` worker processes, publish the pages, time until every sample is in a day."""
    with tempfile.TemporaryDirectory(prefix="wearables-bench-") as tmp:
        pool = _children(("worker",), _worker_env(settings, workers), Path(tmp), workers)
        async with running_together(pool), aiohttp.ClientSession() as session:
                started, cpu_before = time.perf_counter(), _cpu(pool)
                broker_before = cpu_seconds(broker_pid) if broker_pid else 0.0
                publishing = asyncio.ensure_future(_publish(settings, records))
                totals = await _until(
                    pool, session, lambda t: t.get(_NEW_SAMPLES, 0) >= samples,
                    lambda t: f"pipeline: {int(t.get('wearables_normalize_samples_total', 0)):,} samples normalized, "
                              f"{int(t.get(_NEW_SAMPLES, 0)):,} of {samples:,} in day state",
                    timeout=max(300.0, samples / 20_000))
                elapsed, worker_cpu = time.perf_counter() - started, _cpu(pool) - cpu_before
                broker_cpu = cpu_seconds(broker_pid) - broker_before if broker_pid else 0.0
                publish_s = await publishing
                rss = sum(child.peak_rss() for child in pool)
    sizes = await _latest_sizes(settings, f"{settings.app_id}-days-changelog")
    return {
        "elapsed_s": elapsed, "publish_s": publish_s, "end_to_end_samples_per_s": samples / elapsed,
        "normalize_samples_per_s": samples / max(totals.get("wearables_normalize_page_seconds_sum", 0), 1e-9),
        "daily_samples_per_s": samples / max(totals.get("wearables_daily_batch_seconds_sum", 0), 1e-9),
        "state_bytes_per_participant_day": statistics.fmean(sizes) if sizes else 0.0,
        "participant_days": len(sizes), "summaries": int(totals.get("wearables_daily_summaries_total", 0)),
        "workers_peak_rss_bytes": rss, "workers_cpu_s": worker_cpu, "broker_cpu_s": broker_cpu,
        "daily_phase_seconds": {phase: round(totals.get(f"wearables_daily_phase_seconds_sum{{phase={phase}}}", 0.0), 2)
                                for phase in ("decode", "read", "apply", "write", "send", "sweep")},
    }


def _children(command: tuple[str, ...], env: dict[str, str], scratch: Path, count: int) -> list[ChildProcess]:
    """``count`` ``wearables <command>`` processes, each with its own data dir and log."""
    return [ChildProcess(command, env={**env, "WEARABLES_DATA_DIR": str(scratch / f"worker-{n}")},
                         log=scratch / f"worker-{n}" / "worker.log", name=f"{command[-1]}-{n}", ready_timeout=180)
            for n in range(count)]


def _cpu(pool: list[ChildProcess]) -> float:
    return sum(child.cpu_seconds() for child in pool)


_NEW_SAMPLES = "wearables_dedup_samples_total{outcome=new}"


async def _until(pool: list[ChildProcess], session: aiohttp.ClientSession,
                 done: Callable[[dict[str, float]], bool], describe: Callable[[dict[str, float]], str], *,
                 timeout: float) -> dict[str, float]:
    """Poll the children's metrics until ``done``; show ``describe`` as a live line."""
    deadline = time.monotonic() + timeout
    totals: dict[str, float] = {}
    with progress("waiting for the workers") as steps:
        while True:
            totals = await total(pool, session)  # raises ChildProcessFailed when one died
            steps.update(0, note=describe(totals))
            if totals and done(totals):
                return totals
            if time.monotonic() > deadline:
                raise TimeoutError(f"gave up after {timeout:.0f}s: {describe(totals)}")
            await asyncio.sleep(0.2)


async def _latest_sizes(settings: Settings, topic: str) -> list[int]:
    """Sizes of the latest value of every key of a (changelog) topic."""
    consumer = make_consumer(settings)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        latest: dict[bytes, int] = {}
        while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
            for messages in (await consumer.getmany(timeout_ms=1000)).values():
                for message in messages:
                    if message.value is None:
                        latest.pop(message.key, None)
                    else:
                        latest[message.key] = len(message.value)
        return list(latest.values())
    finally:
        await consumer.stop()


async def _baseline(settings: Settings, pages: list[tuple[bytes, RawPage]], workers: int) -> dict[str, Any]:
    """The same samples through ``workers`` per-sample baseline processes (one record per sample)."""
    await ensure_topics(settings, baseline_topics(settings))
    records = []
    for key, page in pages:
        for batch in normalize(page, key.decode(), secret=b"bench").batches:
            for ts, value in zip(batch.timestamps, batch.values, strict=True):
                record = {"day": batch.local_date, "m": batch.metric.value, "t": ts, "v": value}
                records.append((key, orjson.dumps(record)))
    with tempfile.TemporaryDirectory(prefix="wearables-bench-baseline-") as tmp:
        pool = _children(("bench", "baseline-worker"), _worker_env(settings, workers), Path(tmp), workers)
        console.print(f"starting {workers} baseline process(es)")
        async with running_together(pool), aiohttp.ClientSession() as session:
            started = time.perf_counter()
            producer = make_producer(settings, linger_ms=20, max_batch_size=1 << 16)
            await producer.start()
            try:
                for key, payload in records:
                    await producer.send(baseline_topic(settings), payload, key=key)
                await producer.flush()
            finally:
                await producer.stop()
            await _until(pool, session, lambda t: t.get(_BASELINE_SEEN, 0) >= len(records),
                         lambda t: f"baseline: {int(t.get(_BASELINE_SEEN, 0)):,} of {len(records):,} samples",
                         timeout=max(300.0, len(records) / 500))
            elapsed = time.perf_counter() - started
    return {"baseline_samples": len(records), "baseline_samples_per_s": len(records) / elapsed}


_BASELINE_SEEN = "wearables_bench_baseline_samples_total"


def _worker_env(settings: Settings, workers: int) -> dict[str, str]:
    return {"KAFKA_BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers or "", "WEARABLES_ENV": settings.env,
            "WEARABLES_TOPIC_PREFIX": settings.kafka.topic_prefix,
            "WEARABLES_PARTITIONS": str(settings.kafka.partitions),
            "WEARABLES_STORE": settings.store, "WEARABLES_LOG_LEVEL": "WARNING",
            "WEARABLES_KAFKA_COMPRESSION": settings.kafka.compression,
            # one worker per core: each one's Polars pool gets its share, not every core (oversubscription)
            "POLARS_MAX_THREADS": os.environ.get("POLARS_MAX_THREADS",
                                                 str(max(1, (os.cpu_count() or 1) // workers)))}


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


async def run_pipeline_bench(settings: Settings, params: BenchParams, out: Path | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="wearables-bench-broker-") as scratch:
        async with kafka_session(settings.with_overrides(data_dir=Path(scratch)), log_name="broker.log") as kafka:
            result = await _measure(settings.with_overrides(kafka_bootstrap_servers=kafka.bootstrap), params,
                                    kafka.broker_pid)
    _print(result)
    if out is not None:
        out.write_text(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
        console.print(f"wrote {out}")
    return result


async def _measure(settings: Settings, params: BenchParams, broker_pid: int | None) -> dict[str, Any]:
    console.print(f"generating {params.participants} x {params.days} participant-days")
    with console.status("generating"):
        pages = _generate(params, params.participants)
        samples = _sample_count(pages)
    console.print(f"generated {len(pages)} raw pages, {samples:,} samples")
    records = [(key, page.to_bytes()) for key, page in pages]  # serialized before the clock starts
    result: dict[str, Any] = {"parameters": {**dataclasses.asdict(params), "partitions": settings.kafka.partitions,
                                             "store": settings.store, "compression": settings.kafka.compression,
                                             "single_record_batches": settings.kafka.single_record_batches,
                                             "cpu_count": os.cpu_count(), "python": platform.python_version()},
                              "samples": samples, "pages": len(pages)}
    runs = []
    for run in range(params.runs):  # each run on fresh topics and state: the same work every time
        run_settings = settings.with_overrides(topic_prefix=f"{settings.kafka.topic_prefix}run{run}.")
        await create_all_topics(run_settings)
        console.print(f"run {run + 1}/{params.runs}: starting {params.workers} worker process(es)")
        runs.append(await _pipeline(run_settings, records, samples, params.workers, broker_pid))
        if broker_pid is not None:  # the embedded broker keeps topics in memory: free the run's
            await delete_topics(run_settings, [plan.name for plan in all_topic_plans(run_settings)])
        console.print(f"run {run + 1}/{params.runs}: {samples:,} samples in {runs[-1]['elapsed_s']:.1f}s "
                      f"with {params.workers} worker(s): {runs[-1]['end_to_end_samples_per_s']:,.0f} samples/s")
    result |= _median_run(runs)
    small = _generate(params, params.baseline_participants)
    console.print("measuring the per-sample baseline and the Polars limit")
    result |= await _baseline(settings, small, params.workers)
    result |= _limit(pages, samples)
    result["baseline_ratio"] = result["end_to_end_samples_per_s"] / result["baseline_samples_per_s"]
    result["limit_ratio"] = result["end_to_end_samples_per_s"] / result["limit_samples_per_s"]
    result["peak_rss_bytes"] = result["workers_peak_rss_bytes"] + (peak_rss(broker_pid) if broker_pid else 0)
    return result


def _median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Figures of the median run (by end-to-end rate), the peak RSS of all, and every run's rate."""
    ranked = sorted(runs, key=lambda r: r["end_to_end_samples_per_s"])
    median = dict(ranked[len(ranked) // 2])
    median["workers_peak_rss_bytes"] = max(r["workers_peak_rss_bytes"] for r in runs)
    median["runs_end_to_end_samples_per_s"] = [r["end_to_end_samples_per_s"] for r in runs]
    return median


def _print(result: dict[str, Any]) -> None:
    table = Table("figure", "value", title="wearables bench pipeline")
    for key in ("samples", "end_to_end_samples_per_s", "normalize_samples_per_s", "daily_samples_per_s",
                "baseline_samples_per_s", "baseline_ratio", "limit_samples_per_s", "limit_ratio",
                "state_bytes_per_participant_day", "peak_rss_bytes", "elapsed_s", "workers_cpu_s", "broker_cpu_s"):
        value = result.get(key)
        table.add_row(key, f"{value:,.2f}" if isinstance(value, float) else f"{value:,}")
    console.print(table)


