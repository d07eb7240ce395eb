"""The connector processes behind ``wearables simulator | gateway | scheduler | link``."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import aiohttp

from cli.common import console, wait_for_stop_signal
from cli.topics import create_all_topics
from connectors.gateway import running_gateway
from connectors.linking import link_through_consent
from connectors.scheduler import Scheduler
from connectors.simulator.service import SimulatorOptions, running_simulator
from connectors.vault import open_vault
from connectors.vendors.base import VendorClient
from connectors.vendors.registry import build_clients
from models.providers import Provider
from runtime.kafka import make_producer, resolve_bootstrap
from runtime.metrics import start_metrics_server
from runtime.settings import Settings

__all__ = ["link_participants", "run_gateway", "run_scheduler", "run_simulator"]


async def run_simulator(settings: Settings, options: SimulatorOptions, metrics_port: int) -> None:
    start_metrics_server(metrics_port)
    async with running_simulator(settings, options) as sim:
        console.print(f"vendor simulator on {sim.url} ({options.participants:,} participants, {options.days} days; "
                      f"webhooks to {options.webhook_base or 'nobody'}); metrics on :{metrics_port}")
        console.print(f"point the connectors at it: WEARABLES_VENDOR_API_BASE={sim.url}")
        await wait_for_stop_signal()


async def run_gateway(settings: Settings, port: int | None, metrics_port: int) -> None:
    bootstrap = resolve_bootstrap(settings)
    await create_all_topics(settings, bootstrap)
    start_metrics_server(metrics_port)
    producer = make_producer(settings, bootstrap)
    await producer.start()
    try:
        async with open_vault(settings) as vault, running_gateway(settings, vault, producer, port=port) as url:
            console.print(f"gateway on {url}: webhooks at {url}/webhooks/fitbit and {url}/webhooks/google_health; "
                          f"metrics on :{metrics_port}")
            await wait_for_stop_signal()
    finally:
        await producer.stop()


async def run_scheduler(settings: Settings, metrics_port: int) -> None:
    bootstrap = resolve_bootstrap(settings)
    await create_all_topics(settings, bootstrap)
    start_metrics_server(metrics_port)
    stop = asyncio.Event()
    watcher = asyncio.ensure_future(wait_for_stop_signal())
    watcher.add_done_callback(lambda _: stop.set())
    async with open_vault(settings) as vault:
        console.print(f"scheduler fetching into {bootstrap}; polls every {settings.poll_interval:.0f}s; "
                      f"metrics on :{metrics_port}")
        progress = await Scheduler(settings, bootstrap, vault).run(stop)
    console.print(f"scheduler stopped: {progress.consumed:,} fetch requests, {progress.pages:,} pages published")


def linking_client(settings: Settings, provider: Provider, session: aiohttp.ClientSession) -> VendorClient:
    return build_clients(settings, session, providers=[provider])[provider]


async def link_participants(settings: Settings, participants: Sequence[str], provider: Provider) -> int:
    """Link each participant through the vendor's consent page; returns how many were linked."""
    bootstrap = resolve_bootstrap(settings)
    await create_all_topics(settings, bootstrap)
    producer = make_producer(settings, bootstrap)
    await producer.start()
    linked = 0
    try:
        async with open_vault(settings) as vault, aiohttp.ClientSession() as session:
            client = linking_client(settings, provider, session)
            try:
                for participant in participants:
                    await link_through_consent(settings, vault, producer, client, session, participant)
                    linked += 1
            finally:
                await client.aclose()
            await producer.flush()
    finally:
        await producer.stop()
    return linked
