"""`wearables demo`: the whole system on one machine, with real outputs.

Kafka (configured, or an embedded broker), the vendor simulator with a synthetic cohort, the
webhook gateway, the scheduler, the stream worker, the Parquet sink and the participant portal,
all in this process. It ends with an invitation link for one synthetic participant, so that a
person can click through the portal against the simulator (``--keep-running``).
The cohort is linked through the simulator's consent pages (half Fitbit Web API, half Google
Health API); the scheduler backfills it, late devices catch up by webhook, and a live line
shows the pages and samples flowing until every participant-day is summarized.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from rich.table import Table

from cli.console import WorkerIncomplete, console, progress
from cli.kafka_session import kafka_session
from cli.services import linking_client
from cli.status import discovery_file
from cli.topics import create_all_topics
from connectors.gateway import GatewayService
from connectors.linking import link_through_consent
from connectors.scheduler import Scheduler
from connectors.simulator.service import RunningSimulator, SimulatorOptions, SimulatorService
from connectors.vault import open_vault
from connectors.vendors.google_health_notifications import keyset_url
from models.daily import DailySummary
from models.providers import Provider
from portal.invitations import invitation_url
from portal.service import PortalService
from runtime.broker import free_port
from runtime.kafka import make_consumer, make_producer
from runtime.lag import LagMonitor
from runtime.service import ServiceGroup, start_ops_server, wait_for_stop_signal
from runtime.settings import Settings
from sinks.runner import SinkRunner
from streams.app import Pipeline
from streams.runner import WorkerService

__all__ = ["run_demo"]

_QUIET_S = 4.0  # nothing new for this long, with every device synced: the cohort is done
#: the participant the demo's invitation is for: a public name, outside the simulator's cohort
DEMO_PARTICIPANT = "DEMO-PARTICIPANT"


@dataclass(frozen=True, slots=True)
class _Flow:
    scheduler: Scheduler
    pipeline: Pipeline
    sim: RunningSimulator
    services: ServiceGroup
    portal: PortalService
    live: Settings  # the settings the connectors and the portal run with (the simulator's address)

    def counts(self) -> tuple[int, int, int, int, int]:
        worker = self.pipeline.progress
        return (self.scheduler.progress.consumed, self.scheduler.progress.pages, worker.get("raw_pages"),
                worker.get("samples"), worker.get("summaries"))

    def waiting_for(self) -> list[str]:
        """What the cohort is not done with yet (empty: settled)."""
        worker, scheduler = self.pipeline.progress, self.scheduler.progress
        waiting = []
        if not self.sim.world.fully_synced():
            waiting.append("devices still syncing")
        if scheduler.in_flight:
            waiting.append(f"{scheduler.in_flight:,} fetches in flight")
        if worker.get("raw_pages") < scheduler.pages:
            waiting.append(f"{scheduler.pages - worker.get('raw_pages'):,} pages not yet normalized")
        if worker.get("sample_batches") < worker.get("batches_out"):
            waiting.append(f"{worker.get('batches_out') - worker.get('sample_batches'):,} sample batches not yet "
                           "in daily state")
        return waiting


async def run_demo(settings: Settings, *, participants: int, days: int, timeout: float,
                   keep_running: bool, metrics_port: int, tls: bool = False) -> None:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="wearables-demo-") as scratch:
        async with kafka_session(settings, log_name="demo-broker.log", tls=tls) as kafka:
            bootstrap = kafka.bootstrap
            run = settings.with_overrides(**kafka.overrides())  # with --tls: every client of the demo over TLS
            if settings.uses_embedded_broker:
                # a fresh broker forgets every record: table state and the vault start fresh with it
                run = run.with_overrides(faust_state_dir=Path(scratch) / "faust")
                if settings.vault_url is None:
                    run = run.with_overrides(vault_url=f"sqlite:///{Path(scratch) / 'vault.sqlite'}")
            created, present = await create_all_topics(run, bootstrap)
            console.print(f"topics: {len(created)} created, {len(present)} already present")
            async with _processes(run, bootstrap, participants, days) as (flow, link_all), \
                    start_ops_server(metrics_port, flow.services.ready), _announced(run.data_dir, metrics_port):
                await link_all()
                await _follow(flow, timeout)
                summaries = await _latest_summaries(run, bootstrap)
                await _write_dataset(run, bootstrap)
                _report(flow, time.monotonic() - started, metrics_port)
                _report_days(summaries)
                _report_portal(flow, keep_running)
                if keep_running:  # the sink goes on too, so that what a visitor links shows up on the portal
                    async with SinkRunner(run, bootstrap=bootstrap, group=_sink_group(run)).running():
                        console.print("running; press Ctrl-C to stop")
                        await wait_for_stop_signal()


@contextlib.asynccontextmanager
async def _announced(data_dir: Path, metrics_port: int) -> AsyncIterator[None]:
    """Print where the demo's metrics are and record them in ``<data dir>/demo.json`` while it runs, so that
    `wearables status` in another terminal finds them without options."""
    if not metrics_port:
        yield
        return
    url = _metrics_url(metrics_port)
    with discovery_file(data_dir, [url]) as recorded:
        console.print(f"metrics: {url} (recorded in {recorded}); live view in another terminal: wearables status "
                      f"(or wearables status --url {url})", soft_wrap=True)
        yield


def _metrics_url(metrics_port: int) -> str:
    return f"http://127.0.0.1:{metrics_port}/metrics"  # the ops server listens on every interface, this one included


@contextlib.asynccontextmanager
async def _processes(run: Settings, bootstrap: str, participants: int, days: int
                     ) -> AsyncIterator[tuple[_Flow, Callable[[], Awaitable[None]]]]:
    """The worker, gateway, simulator and scheduler services, each started once the one before
    it is (the simulator needs the gateway's URL, the scheduler the simulator's)."""
    console.print("starting the worker (joining its consumer group), the gateway and the vendor simulator")
    async with contextlib.AsyncExitStack() as stack:
        worker = await stack.enter_async_context(WorkerService(run, bootstrap=bootstrap).running())
        vault = await stack.enter_async_context(open_vault(run))
        gateway = await stack.enter_async_context(
            GatewayService(run, bootstrap=bootstrap, vault=vault, port=0).running())
        options = SimulatorOptions(participants=participants, days=days, webhook_base=gateway.url, sync_interval_s=2.0)
        simulator = await stack.enter_async_context(SimulatorService(run, options).running())
        sim = simulator.sim
        portal_port = free_port()  # known before the portal starts: the vendors' redirect URI names it
        portal_url = f"http://127.0.0.1:{portal_port}"
        live = run.with_overrides(vendor_api_base=sim.url, backfill_days=days + 1, portal_port=portal_port,
                                  portal_public_url=portal_url, redirect_uri=f"{portal_url}/link/callback")
        # the gateway started before the simulator had an address: verify its notifications now
        gateway.keysets.retarget(keyset_url(live.gateway, live.vendors))
        scheduler = await stack.enter_async_context(Scheduler(live, bootstrap=bootstrap, vault=vault).running())
        portal = await stack.enter_async_context(
            PortalService(live, bootstrap=bootstrap, vault=vault, port=portal_port).running())
        session = await stack.enter_async_context(aiohttp.ClientSession())
        producer = make_producer(run, bootstrap)
        await producer.start()
        stack.push_async_callback(producer.stop)
        console.print(f"simulator on {sim.url} ({participants} participants, {days} days); gateway on {gateway.url}")

        async def link_all() -> None:
            clients = {p: linking_client(live, p, session) for p in Provider}
            with progress("linking participants", participants) as steps:
                for n, participant in enumerate(sim.world.cohort.participant_ids):
                    provider = Provider.GOOGLE_HEALTH if n % 2 else Provider.FITBIT
                    await link_through_consent(live, vault, producer, clients[provider], session, participant)
                    steps.advance()
            for client in clients.values():
                await client.aclose()
            await producer.flush()
            console.print(f"linked {participants} participants through the simulator's consent pages "
                          f"(half Fitbit Web API, half Google Health API); backfill requested")

        # every consumer group's lag, read from the broker (what `wearables broker` and the sink export)
        lag = await stack.enter_async_context(LagMonitor(run, bootstrap=bootstrap, interval=2.0).running())
        services = ServiceGroup([worker, gateway, simulator, scheduler, portal, lag])
        yield _Flow(scheduler, worker.pipeline, sim, services, portal, live), link_all


async def _follow(flow: _Flow, timeout: float) -> None:
    """A live line of the flow until every device has synced and everything fetched is summarized."""
    loop = asyncio.get_running_loop()
    deadline, quiet_since, last = loop.time() + timeout, loop.time(), flow.counts()
    with progress("pages processed", transient=False) as steps:
        while True:
            counts = flow.counts()
            requests, pages, processed, samples, summaries = counts
            steps.update(processed, note=f"fetch requests {requests:,} · pages fetched {pages:,} · samples "
                                         f"{samples:,} · daily summaries {summaries:,}")
            if counts != last:
                quiet_since, last = loop.time(), counts
            waiting = flow.waiting_for()
            if not waiting and loop.time() - quiet_since >= _QUIET_S:
                return
            if loop.time() > deadline:
                raise WorkerIncomplete(f"the cohort was not done within {timeout:g}s ({pages:,} pages fetched, "
                                       f"{processed:,} processed; waiting for: {', '.join(waiting) or 'quiet'}); "
                                       "rerun with a larger --timeout")
            await asyncio.sleep(0.5)


async def _write_dataset(run: Settings, bootstrap: str) -> None:
    console.print("writing the Parquet dataset (until the daily and intraday topics are drained)")
    written = await SinkRunner(run, bootstrap=bootstrap, group=_sink_group(run), idle_exit=3.0).drain()
    console.print(f"dataset: {run.dataset_location} ({written.records:,} records merged; read it with Polars, "
                  "see README 'Researcher outputs')")


def _sink_group(run: Settings) -> str:
    """The demo's sink group: the one-shot write and the sink kept running with --keep-running share it."""
    return f"{run.kafka.topic_prefix}demo-sink"


async def _latest_summaries(settings: Settings, bootstrap: str) -> dict[str, DailySummary]:
    consumer = make_consumer(settings, settings.topic("daily"), bootstrap=bootstrap,
                             group_id=f"demo-{time.time_ns()}")
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
    # the vendors answer days without data too (zero totals); those summaries say "no data"
    days = [d for d in summaries.values() if d.steps or d.minutes_with_hr]
    valid = sum(d.valid_day for d in days)
    steps = [d.steps for d in days]
    asleep = [d.sleep_minutes_asleep for d in days if d.sleep_minutes_asleep]
    sleep_median = _median(asleep)
    console.print(f"daily topic: {len(days)} participant-days with data summarized, {valid} valid days "
                  f"(>= 10 h with steps, 100-45,000 steps), median {_median(steps)} steps; {len(asleep)} with a "
                  f"night's sleep, median {sleep_median // 60} h {sleep_median % 60:02d} min asleep")
    # participants are numbered, not named: a research ID is never printed
    number = {rid: n for n, rid in enumerate(sorted({d.research_id for d in days}), start=1)}
    table = Table("participant", "date", "source", "steps", "HR mean", "approx resting HR", "asleep (min)", "valid",
                  "revision", title="a few daily summaries")
    for day in days[:6]:
        table.add_row(f"#{number[day.research_id]}", day.local_date, str(day.source), str(day.steps),
                      f"{day.hr_mean:.1f}" if day.hr_mean else "-", str(day.approx_resting_hr),
                      str(day.sleep_minutes_asleep or "-"), str(day.valid_day), str(day.revision))
    console.print(table)


def _report_portal(flow: _Flow, keep_running: bool) -> None:
    """The portal's address and an invitation for a synthetic participant who is not linked yet.

    Its ID is a fixed public name (``DEMO_PARTICIPANT``), not one of the cohort's: the person
    trying the demo types it at the simulated vendor's sign-in, and no cohort ID is printed.
    """
    console.print(f"participant portal: {flow.portal.url} (English and Spanish)")
    console.print(f"an invitation for the synthetic participant {DEMO_PARTICIPANT}: open it in a browser"
                  + ("" if keep_running else " while the demo runs (add --keep-running)")
                  + f"; at the simulated vendor's consent page, sign in as {DEMO_PARTICIPANT}")
    console.print(invitation_url(flow.live, DEMO_PARTICIPANT), soft_wrap=True)


def _median(values: list[int]) -> int:
    return statistics.median_high(values) if values else 0  # a value someone had, not a mean of two


def _report(flow: _Flow, elapsed: float, metrics_port: int) -> None:
    requests, pages, processed, samples, summaries = flow.counts()
    stats = flow.sim.world.stats
    table = Table("", "count", title="simulator → scheduler → worker → daily")
    table.add_row("vendor API requests answered", f"{stats['requests_fitbit'] + stats['requests_google_health']:,}")
    table.add_row("rate-limit violations", f"{stats['violations_fitbit'] + stats['violations_google_health']:,}")
    table.add_row("webhook notifications acknowledged", f"{stats['webhooks_acknowledged']:,}")
    table.add_row("fetch requests carried out", f"{requests:,}")
    table.add_row("raw pages fetched / processed", f"{pages:,} / {processed:,}")
    table.add_row("samples published", f"{samples:,}")
    table.add_row("samples rejected", str(flow.pipeline.progress.get("rejected")))
    table.add_row("daily summaries emitted", f"{summaries:,}")
    console.print(table)
    if metrics_port:
        console.print(f"metrics: {_metrics_url(metrics_port)} (live view: wearables status)")
    console.print(f"demo finished in {elapsed:.1f}s")
