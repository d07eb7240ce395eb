"""The connector side on the embedded broker: simulator, gateway, scheduler (in this event loop)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from typing import Any

import aiohttp
from aiokafka import AIOKafkaProducer

from cli.topics import create_all_topics
from connectors.gateway import running_gateway
from connectors.linking import link_through_consent
from connectors.scheduler import Scheduler
from connectors.simulator.service import RunningSimulator, SimulatorOptions, running_simulator
from connectors.vault import TokenVault, open_vault
from connectors.vendors.base import VendorClient
from connectors.vendors.registry import aclose_all, build_clients
from models.providers import Provider
from runtime.kafka import make_producer
from runtime.settings import Settings


@dataclass
class Stack:
    settings: Settings
    sim: RunningSimulator
    vault: TokenVault
    producer: AIOKafkaProducer
    session: aiohttp.ClientSession
    gateway: str
    scheduler: Scheduler
    clients: dict[Provider, VendorClient]

    async def link(self, participant: str, provider: Provider) -> None:
        await link_through_consent(self.settings, self.vault, self.producer, self.clients[provider], self.session,
                                   participant)


@contextlib.asynccontextmanager
async def connector_stack(settings_factory: Callable[..., Settings], options: SimulatorOptions,
                          run_scheduler: bool = True, **overrides: Any) -> AsyncIterator[Stack]:
    base = settings_factory(**overrides)
    await create_all_topics(base)
    producer = make_producer(base)
    await producer.start()
    stop = asyncio.Event()
    try:
        async with open_vault(base) as vault, running_gateway(base, vault, producer, port=0) as gateway, \
                running_simulator(base, _with_webhooks(options, gateway)) as sim, \
                aiohttp.ClientSession() as session:
            settings = base.with_overrides(vendor_api_base=sim.url)
            scheduler = Scheduler(settings, settings.kafka_bootstrap_servers or "", vault)
            clients = build_clients(settings, session)
            task = asyncio.ensure_future(scheduler.run(stop)) if run_scheduler else None
            try:
                yield Stack(settings, sim, vault, producer, session, gateway, scheduler, clients)
            finally:
                stop.set()
                if task:
                    await asyncio.wait_for(task, 60)
                await aclose_all(clients)
    finally:
        await producer.stop()


def _with_webhooks(options: SimulatorOptions, gateway: str) -> SimulatorOptions:
    return replace(options, webhook_base=options.webhook_base or gateway)
