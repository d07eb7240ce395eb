"""`wearables bench connector`: vendor requests/s and samples/s through the real scheduler.

The simulator runs in its own process (a vendor is another machine; here another core) with
``--participants`` people; they are linked through its consent pages (not timed), which
queues each one's backfill; then the scheduler carries the backfill out — rate limiter, token
manager, Google Health client, Kafka producer onto ``raw.google_health`` — and is timed from
its first request to its last page acknowledged by Kafka.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from cli.common import console
from cli.kafka_session import kafka_session
from cli.topics import create_all_topics
from cli.worker_processes import cpu_seconds
from connectors.linking import link_through_consent
from connectors.scheduler import Scheduler
from connectors.vault import open_vault
from connectors.vendors.google_health_spec import DATA_TYPES as GOOGLE_DATA_TYPES
from connectors.vendors.registry import build_clients
from models.providers import Provider
from runtime.kafka import make_producer
from runtime.settings import Settings

__all__ = ["run_connector_bench"]

TARGET_REQUESTS_PER_S = 1500


async def run_connector_bench(settings: Settings, *, participants: int, days: int, link_concurrency: int,
                              out: Path | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="wearables-bench-connector-") as scratch:
        run = settings.model_copy(update={"env": "demo", "data_dir": Path(scratch), "vault_url": None,
                                          "backfill_days": days})
        async with kafka_session(run, log_name="bench-connector-broker.log") as bootstrap, \
                _simulator(participants, days, Path(scratch)) as (url, simulator_pid):
            live = run.with_overrides(kafka_bootstrap_servers=bootstrap, vendor_api_base=url)
            await create_all_topics(live, bootstrap)
            async with open_vault(live) as vault, aiohttp.ClientSession() as session:
                await _link_all(live, vault, session, participants, link_concurrency)
                before = await _stats(session, url)
                cpu_before = cpu_seconds(simulator_pid), time.process_time()
                expected = participants * len(GOOGLE_DATA_TYPES)  # one backfill request per data type
                elapsed, progress = await _fetch_all(live, bootstrap, vault, expected=expected)
                after = await _stats(session, url)
                cpu = cpu_seconds(simulator_pid) - cpu_before[0], time.process_time() - cpu_before[1]
    requests = after["requests_google_health"] - before.get("requests_google_health", 0)
    samples = after.get("samples_served", 0) - before.get("samples_served", 0)
    result = {
        "requests_per_s": round(requests / elapsed, 1), "samples_per_s": round(samples / elapsed, 1),
        "rate_limit_violations": after.get("rate_limit_violations", 0),
        "target_requests_per_s": TARGET_REQUESTS_PER_S, "requests": requests, "samples": samples,
        "pages_published": progress.pages, "fetch_requests": progress.consumed,
        "fetch_outcomes": dict(progress.outcomes), "elapsed_s": round(elapsed, 2),
        "simulator_cpu_s": round(cpu[0], 2), "scheduler_cpu_s": round(cpu[1], 2),
        "parameters": {"participants": participants, "days": days, "provider": "google_health",
                       "fetch_concurrency": settings.fetch_concurrency},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
    }
    _print(result)
    if out is not None:
        out.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
        console.print(f"wrote {out}")
    return result


@contextlib.asynccontextmanager
async def _simulator(participants: int, days: int, scratch: Path) -> AsyncIterator[tuple[str, int]]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = (scratch / "simulator.log").open("wb")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cli.main", "simulator", "--participants", str(participants), "--days", str(days),
        "--port", str(port), "--sync-interval", "86400", "--metrics-port", "0",
        env={**os.environ, "WEARABLES_ENV": "demo"}, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(100):
                with contextlib.suppress(aiohttp.ClientError):
                    await _stats(session, url)
                    break
                if process.returncode is not None:
                    raise RuntimeError(f"the simulator exited: {(scratch / 'simulator.log').read_text()[-2000:]}")
                await asyncio.sleep(0.2)
        yield url, process.pid
    finally:
        process.terminate()
        await process.wait()
        log.close()


async def _stats(session: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    async with session.get(f"{url}/_sim/stats") as answer:
        stats: dict[str, Any] = await answer.json()
        return stats


async def _link_all(settings: Settings, vault: Any, session: aiohttp.ClientSession, participants: int,
                    concurrency: int) -> None:
    client = build_clients(settings, session, providers=[Provider.GOOGLE_HEALTH])[Provider.GOOGLE_HEALTH]
    producer = make_producer(settings)
    await producer.start()
    gate = asyncio.Semaphore(concurrency)
    ids = [f"P{1_000_000_000 + n}" for n in range(participants)]
    try:
        with Progress(TextColumn("linking (not timed)"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=console, transient=True) as bar:
            job = bar.add_task("link", total=participants)

            async def one(participant: str) -> None:
                async with gate:
                    await link_through_consent(settings, vault, producer, client, session, participant)
                bar.advance(job)

            await asyncio.gather(*(one(p) for p in ids))
        await producer.flush()
    finally:
        await producer.stop()


async def _fetch_all(settings: Settings, bootstrap: str, vault: Any, *, expected: int) -> tuple[float, Any]:
    scheduler = Scheduler(settings, bootstrap, vault)
    stop = asyncio.Event()
    task = asyncio.ensure_future(scheduler.run(stop, poll=False))
    progress = scheduler.progress
    with Progress(TextColumn("fetching backfill"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[pages]:,} pages"), TimeElapsedColumn(), console=console,
                  transient=True) as bar:
        job = bar.add_task("fetch", total=expected, pages=0)
        while progress.consumed == 0:
            await asyncio.sleep(0.01)
        started = time.perf_counter()
        while sum(progress.outcomes.values()) < expected:
            bar.update(job, completed=sum(progress.outcomes.values()), pages=progress.pages)
            await asyncio.sleep(0.1)
        elapsed = time.perf_counter() - started
    stop.set()
    await task
    return elapsed, progress


def _print(result: dict[str, Any]) -> None:
    table = Table("figure", "value", title="bench connector (Google Health API, simulator in its own process)")
    for key in ("requests_per_s", "samples_per_s", "rate_limit_violations", "requests", "samples",
                "pages_published", "fetch_requests", "elapsed_s", "simulator_cpu_s", "scheduler_cpu_s"):
        value = result[key]
        table.add_row(key, f"{value:,}" if isinstance(value, int | float) else str(value))
    table.add_row("target requests_per_s", f"{TARGET_REQUESTS_PER_S:,}")
    console.print(table)
