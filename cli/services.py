"""The bodies of the process commands: build the services, then ``serve()`` them.

Every long-running command is "parse options → build services → ``serve(...)``" (runtime/service.py):
the ops server (/metrics, /healthz, /readyz), signals and a clean shutdown are the same for all.
The one-shot compositions (demo, replay, benchmarks, test fixtures) enter the same services.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Sequence

import aiohttp

from cli.console import console, progress
from cli.kafka_session import kafka_ready
from cli.topics import create_all_topics
from connectors.gateway import GatewayService
from connectors.linking import link_through_consent
from connectors.scheduler import Scheduler
from connectors.simulator.service import SimulatorOptions, SimulatorService
from connectors.vault import open_vault
from connectors.vendors.base import VendorClient
from connectors.vendors.registry import aclose_all, build_clients
from connectors.withdrawal import WithdrawalReport, withdraw
from models.audit import Actor
from models.errors import ConfigurationError
from models.ids import research_id
from models.providers import Provider
from portal.my_data import dates_of
from portal.service import PortalService
from runtime.broker import BrokerService, EmbeddedBroker
from runtime.gc_tuning import tune_gc
from runtime.kafka import make_producer
from runtime.lag import LagMonitor
from runtime.metrics import gauge
from runtime.service import serve
from runtime.settings import Settings
from sinks.dataset import Dataset
from sinks.runner import SinkProgress, SinkRunner
from streams.runner import WorkerService

__all__ = ["link_participants", "linking_client", "run_broker", "run_gateway", "run_portal", "run_scheduler",
           "run_simulator", "run_sink", "run_worker", "withdraw_participants"]

BROKER_UP = gauge("embedded_broker_up", "1 while the embedded broker process is running")


async def run_broker(settings: Settings, *, port: int | None, create_topics: bool, metrics_port: int,
                     tls: bool = False) -> None:
    if settings.kafka.bootstrap_servers:
        raise ConfigurationError(f"KAFKA_BOOTSTRAP_SERVERS is set ({settings.kafka.bootstrap_servers}), so every "
                                 "command uses that cluster; unset it to run the embedded broker")
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    # State built against a previous in-memory broker refers to offsets that no longer exist.
    shutil.rmtree(settings.state_dir, ignore_errors=True)
    broker = BrokerService(EmbeddedBroker(port, log_path=settings.data_dir / "broker.log", tls=tls,
                                          tls_dir=(settings.data_dir / "broker-tls").resolve()),
                           address_dir=settings.data_dir)

    async def announce() -> None:
        BROKER_UP.set(1)
        if create_topics:
            created, present = await create_all_topics(settings, broker.bootstrap)
            console.print(f"topics: {len(created)} created, {len(present)} already present")
        over = f" over TLS, client certificate required (stunnel pid {broker.broker.stunnel_pid})" if tls else ""
        console.print(f"embedded broker ready: [bold]{broker.bootstrap}[/]{over} (pid {broker.broker.pid})",
                      soft_wrap=True)
        if broker.tls is not None:
            console.print("commands run with this WEARABLES_DATA_DIR connect over TLS by themselves; "
                          "elsewhere set:", markup=False, soft_wrap=True)
        console.print(f"KAFKA_BOOTSTRAP_SERVERS={broker.bootstrap}", markup=False)
        for name, value in (broker.tls.variables() if broker.tls is not None else {}).items():
            console.print(f"{name}={value}", markup=False, soft_wrap=True)

    try:
        # the broker's process reports every consumer group's lag (it starts after the broker answers)
        lag = LagMonitor(settings, bootstrap=broker.bootstrap)
        reason = await serve(broker, lag, metrics_port=metrics_port, on_ready=announce)
    finally:
        BROKER_UP.set(0)
    console.print(f"{reason}: stopping the broker")


async def run_worker(settings: Settings, *, metrics_port: int) -> None:
    bootstrap = await kafka_ready(settings)
    tune_gc(settings.gc_gen0_threshold)
    worker = WorkerService(settings, bootstrap=bootstrap)

    async def announce() -> None:
        console.print(f"worker {settings.app_id} running against {bootstrap}; metrics on :{metrics_port}")

    reason = await serve(worker, metrics_port=metrics_port, on_ready=announce)
    console.print(f"{reason}: stopped; processed {worker.pipeline.progress.snapshot()}")


async def run_sink(settings: Settings, *, location: str | None, metrics_port: int) -> None:
    bootstrap = await kafka_ready(settings)

    def flushed(p: SinkProgress) -> None:
        console.print(f"sink: {p.records:,} records, {sum(p.rows.values()):,} rows merged, "
                      f"{p.dead_letters} dead letter(s)")

    sink = SinkRunner(settings, bootstrap=bootstrap, location=location, on_flush=flushed)

    async def announce() -> None:
        console.print(f"sink writing {sink.dataset.location} from {bootstrap}; metrics on :{metrics_port}")

    await serve(sink, LagMonitor(settings, bootstrap=bootstrap), metrics_port=metrics_port, on_ready=announce)
    console.print(f"sink stopped after {sink.progress.flushes} flush(es)")


async def run_simulator(settings: Settings, options: SimulatorOptions, *, metrics_port: int) -> None:
    simulator = SimulatorService(settings, options)

    async def announce() -> None:
        url = simulator.sim.url
        console.print(f"vendor simulator on {url} ({options.participants:,} participants, {options.days} days; "
                      f"webhooks to {options.webhook_base or 'nobody'}); metrics on :{metrics_port}")
        console.print(f"point the connectors at it: WEARABLES_VENDOR_API_BASE={url}")

    await serve(simulator, metrics_port=metrics_port, on_ready=announce)


async def run_gateway(settings: Settings, *, port: int | None, metrics_port: int) -> None:
    bootstrap = await kafka_ready(settings)
    async with open_vault(settings) as vault:
        gateway = GatewayService(settings, bootstrap=bootstrap, vault=vault, port=port)

        async def announce() -> None:
            console.print(f"gateway on {gateway.url}: webhooks at {gateway.url}/webhooks/fitbit and "
                          f"{gateway.url}/webhooks/google_health (Google keyset from {gateway.keysets.url}); "
                          f"metrics on :{metrics_port}")

        await serve(gateway, metrics_port=metrics_port, on_ready=announce)


async def run_portal(settings: Settings, *, port: int | None, metrics_port: int) -> None:
    bootstrap = await kafka_ready(settings)
    async with open_vault(settings) as vault:
        portal = PortalService(settings, bootstrap=bootstrap, vault=vault, port=port)

        async def announce() -> None:
            console.print(f"participant portal on {portal.url} (participants arrive with an invitation link: "
                          f"`wearables invite PARTICIPANT`); metrics on :{metrics_port}")

        await serve(portal, metrics_port=metrics_port, on_ready=announce)


async def withdraw_participants(settings: Settings, participants: Sequence[str], *, purge: bool
                                ) -> list[WithdrawalReport | None]:
    """Staff's withdrawal of each participant (``connectors.withdrawal.withdraw``, actor staff):
    per participant what was done, or None when we hold nothing of theirs (no link, no rows) and
    no purge was asked (a purge is published anyway: topics may still hold their records)."""
    bootstrap = await kafka_ready(settings)
    producer = make_producer(settings, bootstrap)
    await producer.start()
    secret = settings.require_secret_key()
    dataset = Dataset(settings.dataset_location)
    reports: list[WithdrawalReport | None] = []
    try:
        async with open_vault(settings) as vault, aiohttp.ClientSession() as session:
            clients = build_clients(settings.vendors, session)
            try:
                for participant in participants:
                    rid = research_id(secret, participant)
                    dates = await asyncio.to_thread(dates_of, dataset, rid)  # reads Parquet: off the loop
                    if not purge and not dates and await vault.get(rid) is None:
                        reports.append(None)
                        continue
                    reports.append(await withdraw(settings, vault, producer, clients, rid, actor=Actor.STAFF,
                                                  purge=purge, dates=dates))
            finally:
                await aclose_all(clients)
    finally:
        await producer.stop()
    return reports


async def run_scheduler(settings: Settings, *, metrics_port: int) -> None:
    bootstrap = await kafka_ready(settings)
    async with open_vault(settings) as vault:
        scheduler = Scheduler(settings, bootstrap=bootstrap, vault=vault)

        async def announce() -> None:
            console.print(f"scheduler fetching into {bootstrap}; polls every {settings.scheduler.poll_interval:.0f}s;"
                          f" metrics on :{metrics_port}")

        await serve(scheduler, metrics_port=metrics_port, on_ready=announce)
    done = scheduler.progress
    console.print(f"scheduler stopped: {done.consumed:,} fetch requests, {done.pages:,} pages published")


def linking_client(settings: Settings, provider: Provider, session: aiohttp.ClientSession) -> VendorClient:
    return build_clients(settings.vendors, session, providers=[provider])[provider]


async def link_participants(settings: Settings, participants: Sequence[str], provider: Provider) -> int:
    """Link each participant through the vendor's consent page; returns how many were linked."""
    bootstrap = await kafka_ready(settings)
    producer = make_producer(settings, bootstrap)
    await producer.start()
    linked = 0
    try:
        async with open_vault(settings) as vault, aiohttp.ClientSession() as session:
            client = linking_client(settings, provider, session)
            try:
                with progress("linking participants", len(participants)) as steps:
                    for participant in participants:
                        await link_through_consent(settings, vault, producer, client, session, participant)
                        linked += 1
                        steps.advance()
            finally:
                await client.aclose()
            await producer.flush()
    finally:
        await producer.stop()
    return linked
