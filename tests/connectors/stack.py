"""The connector side on the embedded broker: simulator, gateway, scheduler (in this event loop)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from typing import Any

import aiohttp
from aiokafka import AIOKafkaProducer

from cli.topics import create_all_topics
from connectors.gateway import GatewayService
from connectors.linking import link_through_consent
from connectors.scheduler import Scheduler
from connectors.simulator.service import RunningSimulator, SimulatorOptions, SimulatorService
from connectors.vault import TokenVault, open_vault
from connectors.vendors.base import VendorClient
from connectors.vendors.google_health_notifications import keyset_url
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
    """The gateway, simulator and scheduler services as the demo composes them (the scheduler
    built but not started with ``run_scheduler=False``), and a producer and clients for linking."""
    base = settings_factory(**overrides)
    await create_all_topics(base)
    bootstrap = base.kafka.bootstrap_servers or ""
    async with contextlib.AsyncExitStack() as stack:
        producer = make_producer(base)
        await producer.start()
        stack.push_async_callback(producer.stop)
        vault = await stack.enter_async_context(open_vault(base))
        gateway = await stack.enter_async_context(GatewayService(base, bootstrap=bootstrap, vault=vault,
                                                                 port=0).running())
        simulator = await stack.enter_async_context(
            SimulatorService(base, _with_webhooks(options, gateway.url)).running())
        session = await stack.enter_async_context(aiohttp.ClientSession())
        settings = base.with_overrides(vendor_api_base=simulator.sim.url)
        # the gateway started before the simulator had an address: point it at the simulator's keyset
        gateway.keysets.retarget(keyset_url(settings.gateway, settings.vendors))
        scheduler = Scheduler(settings, bootstrap=bootstrap, vault=vault)
        if run_scheduler:
            await stack.enter_async_context(scheduler.running())
        clients = build_clients(settings.vendors, session)
        stack.push_async_callback(aclose_all, clients)
        yield Stack(settings, simulator.sim, vault, producer, session, gateway.url, scheduler, clients)


def _with_webhooks(options: SimulatorOptions, gateway: str) -> SimulatorOptions:
    return replace(options, webhook_base=options.webhook_base or gateway)
