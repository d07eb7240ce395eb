"""`wearables bench connector`: vendor requests/s and samples/s through the real scheduler, and
the same machine's limit for this work measured in the same run.

The simulator runs in its own process (a vendor is another machine; here another core) with
``--participants`` people; they are linked through its consent pages (not timed), which
queues each one's backfill; then the scheduler carries the backfill out — rate limiter, token
manager, Google Health client, Kafka producer onto ``raw.google_health`` — and is timed from
its first request to its last page acknowledged by Kafka.

Machines differ 2-3x, so absolute rates do not compare across them. The limit does: a bare
loop of plain aiohttp GETs of the same pages (same queries, page tokens followed) from the
same simulator at the same concurrency, with no token manager, limiter, vault or Kafka. It
runs after the scheduler, in a fresh rate-limit minute, over a slice of the participants small
enough to stay under the vendor's project limit; ``limit_ratio`` = scheduler / bare loop.
"""

from __future__ import annotations

import asyncio
import os
import platform
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from rich.table import Table

from cli.children import ChildProcess
from cli.console import console, progress
from cli.kafka_session import kafka_session
from cli.topics import create_all_topics
from connectors.linking import link_through_consent
from connectors.scheduler import Scheduler, SchedulerProgress, fetch_window
from connectors.vault import TokenVault, open_vault
from connectors.vendors.google_health import next_page_token
from connectors.vendors.google_health_spec import (
    BOUND_FORMATS,
    DATA_POINTS_PATH,
    FILTER_FIELDS,
    PER_PROJECT_LIMIT,
    UNDATED_TYPES,
)
from connectors.vendors.google_health_spec import DATA_TYPES as GOOGLE_DATA_TYPES
from connectors.vendors.registry import build_clients
from models.providers import Provider
from runtime.kafka import make_producer
from runtime.settings import Settings

__all__ = ["run_connector_bench"]

TARGET_REQUESTS_PER_S = 1500
_LIMIT_MAX_REQUESTS = 30_000  # a quarter of the project's 120,000/min: the bare loop never meets a 429
_PAGE_SIZE = 1000  # the client's


async def run_connector_bench(settings: Settings, *, participants: int, days: int, link_concurrency: int,
                              out: Path | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="wearables-bench-connector-") as scratch:
        run = settings.with_overrides(env="demo", data_dir=Path(scratch), vault_url=None, backfill_days=days)
        simulator = ChildProcess(("simulator", "--participants", str(participants), "--days", str(days),
                                  "--port", "0", "--sync-interval", "86400", "--complete"),
                                 env={"WEARABLES_ENV": "demo"}, log=Path(scratch) / "simulator.log")
        async with kafka_session(run, log_name="bench-connector-broker.log") as kafka:
            bootstrap = kafka.bootstrap
            with console.status("starting the vendor simulator"):
                url = await _start_simulator(simulator)
            try:
                live = run.with_overrides(kafka_bootstrap_servers=bootstrap, vendor_api_base=url)
                await create_all_topics(live, bootstrap)
                async with open_vault(live) as vault, aiohttp.ClientSession() as session:
                    await _link_all(live, vault, session, participants, link_concurrency)
                    before = await _stats(session, url)
                    cpu_before = simulator.cpu_seconds(), time.process_time()
                    # one backfill request per data type, the devices' snapshot included
                    expected = participants * (len(GOOGLE_DATA_TYPES) + len(UNDATED_TYPES))
                    elapsed, done = await _fetch_all(live, bootstrap, vault, expected=expected)
                    after = await _stats(session, url)
                    cpu = simulator.cpu_seconds() - cpu_before[0], time.process_time() - cpu_before[1]
                    limit = await _bare_loop(live, vault, url, days=days,
                                             concurrency=settings.scheduler.fetch_concurrency,
                                             sent=after["requests_google_health"])
            finally:
                await simulator.stop()
    requests = after["requests_google_health"] - before.get("requests_google_health", 0)
    samples = after.get("samples_served", 0) - before.get("samples_served", 0)
    requests_per_s = requests / elapsed
    result = {
        "requests_per_s": round(requests_per_s, 1), "samples_per_s": round(samples / elapsed, 1),
        "rate_limit_violations": after.get("rate_limit_violations", 0),
        "limit_requests_per_s": round(limit["requests_per_s"], 1),
        "limit_ratio": round(requests_per_s / limit["requests_per_s"], 3),
        "limit_requests": limit["requests"], "limit_429s": limit["429s"],
        "scheduler_cpu_s_per_1000_requests": round(1000 * cpu[1] / requests, 3),
        "simulator_cpu_s_per_1000_requests": round(1000 * cpu[0] / requests, 3),
        "target_requests_per_s": TARGET_REQUESTS_PER_S, "requests": requests, "samples": samples,
        "pages_published": done.pages, "fetch_requests": done.consumed,
        "fetch_outcomes": dict(done.outcomes), "elapsed_s": round(elapsed, 2),
        "simulator_cpu_s": round(cpu[0], 2), "scheduler_cpu_s": round(cpu[1], 2),
        "parameters": {"participants": participants, "days": days, "provider": "google_health",
                       "fetch_concurrency": settings.scheduler.fetch_concurrency},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
    }
    _print(result)
    if out is not None:
        out.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
        console.print(f"wrote {out}")
    return result


async def _start_simulator(simulator: ChildProcess) -> str:
    """Start the child and read the URL it announces (it picks a free port itself)."""
    await simulator.start()
    log = simulator.log
    for _ in range(50):
        for line in log.read_text(errors="replace").splitlines():
            if "WEARABLES_VENDOR_API_BASE=" in line:
                return line.rsplit("=", 1)[1].strip()
        await asyncio.sleep(0.1)
    raise RuntimeError(f"the simulator did not say where it listens; see {log}")


async def _stats(session: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    async with session.get(f"{url}/_sim/stats") as answer:
        stats: dict[str, Any] = await answer.json()
        return stats


async def _link_all(settings: Settings, vault: TokenVault, session: aiohttp.ClientSession, participants: int,
                    concurrency: int) -> None:
    client = build_clients(settings.vendors, session, providers=[Provider.GOOGLE_HEALTH])[Provider.GOOGLE_HEALTH]
    producer = make_producer(settings)
    await producer.start()
    gate = asyncio.Semaphore(concurrency)
    ids = [f"P{1_000_000_000 + n}" for n in range(participants)]
    try:
        with progress("linking participants (not timed)", participants) as steps:

            async def one(participant: str) -> None:
                async with gate:
                    await link_through_consent(settings, vault, producer, client, session, participant)
                steps.advance()

            await asyncio.gather(*(one(p) for p in ids))
        await producer.flush()
    finally:
        await producer.stop()
        await client.aclose()


async def _fetch_all(settings: Settings, bootstrap: str, vault: TokenVault, *, expected: int
                     ) -> tuple[float, SchedulerProgress]:
    scheduler = Scheduler(settings, bootstrap=bootstrap, vault=vault, poll=False)
    done = scheduler.progress
    async with scheduler.running():
        with progress("fetching the backfill (timed)", expected) as steps:
            while done.consumed == 0:
                await asyncio.sleep(0.01)
            started = time.perf_counter()
            while sum(done.outcomes.values()) < expected:
                steps.update(sum(done.outcomes.values()), note=f"{done.pages:,} pages")
                await asyncio.sleep(0.1)
            elapsed = time.perf_counter() - started
            steps.update(sum(done.outcomes.values()), note=f"{done.pages:,} pages")
    return elapsed, done


async def _bare_loop(settings: Settings, vault: TokenVault, url: str, *, days: int, concurrency: int, sent: int
                     ) -> dict[str, Any]:
    """Plain GETs of the backfill's pages for a slice of the participants: the machine's limit.

    ``sent``: requests the simulator has answered so far. When they and the loop's together could
    exceed the project's per-minute limit, the loop waits for a fresh minute first."""
    start, end = fetch_window(days)
    first, last = date.fromisoformat(start), date.fromisoformat(end)
    dates = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    # a request chain per participant, data type and day; about this many requests each, page tokens included
    per_participant = len(GOOGLE_DATA_TYPES) * len(dates) + 3
    tokens = []
    for link in (await vault.links())[: max(1, _LIMIT_MAX_REQUESTS // per_participant)]:
        current = await vault.tokens(link.research_id)
        if current is not None:
            tokens.append(current[0].access_token)
    chains = [(token, data_type, day) for token in tokens for data_type in GOOGLE_DATA_TYPES for day in dates]
    fits = sent + len(chains) * 2 < PER_PROJECT_LIMIT[0]  # about two pages a chain
    pause = 0.0 if fits else 60 - time.time() % 60 + 0.5  # else a fresh rate-limit minute at the simulator
    console.print(f"measuring the limit: plain GETs of {len(chains):,} day chains"
                  + ("" if fits else f", in {pause:.0f} s (at the start of a fresh rate-limit minute)"))
    await asyncio.sleep(pause)
    counts = {"requests": 0, "429s": 0}
    gate = asyncio.Semaphore(concurrency)
    connector = aiohttp.TCPConnector(limit=concurrency, ttl_dns_cache=300)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def chain(token: str, data_type: str, day: date) -> None:
            field, form = FILTER_FIELDS[data_type], BOUND_FORMATS[data_type]
            begin = datetime.combine(day, datetime.min.time(), UTC)
            query = {"filter": f'{field} >= "{begin:{form}}" AND {field} < "{begin + timedelta(days=1):{form}}"',
                     "page_size": str(_PAGE_SIZE)}
            headers = {"Authorization": f"Bearer {token}"}
            page_url = url + DATA_POINTS_PATH.format(data_type=data_type)
            async with gate:
                while True:
                    async with session.get(page_url, params=query, headers=headers) as answer:
                        body = await answer.read()
                    counts["requests"] += 1
                    if answer.status == 429:
                        counts["429s"] += 1
                        await asyncio.sleep(float(answer.headers.get("Retry-After", "1")))
                        continue
                    token_next = next_page_token(body)
                    if not token_next:
                        return
                    query["page_token"] = token_next

        started = time.perf_counter()
        await asyncio.gather(*(chain(*c) for c in chains))
        elapsed = time.perf_counter() - started
    return {"requests_per_s": counts["requests"] / elapsed, "requests": counts["requests"], "429s": counts["429s"]}


def _print(result: dict[str, Any]) -> None:
    table = Table("figure", "value", title="bench connector (Google Health API, simulator in its own process)")
    for key in ("requests_per_s", "limit_requests_per_s", "limit_ratio", "samples_per_s", "rate_limit_violations",
                "requests", "samples", "pages_published", "fetch_requests", "elapsed_s",
                "scheduler_cpu_s_per_1000_requests", "simulator_cpu_s_per_1000_requests", "limit_429s"):
        value = result[key]
        table.add_row(key, f"{value:,}" if isinstance(value, int | float) else str(value))
    table.add_row("target requests_per_s", f"{TARGET_REQUESTS_PER_S:,}")
    console.print(table)
