"""Run the simulator (HTTP server + device syncs + webhook delivery) inside an asyncio program:
``running_simulator`` as a context manager, ``SimulatorService`` as a service for ``serve()``."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from connectors.simulator.app import build_simulator_app
from connectors.simulator.cohort import SyntheticCohort
from connectors.simulator.delivery import WebhookDelivery
from connectors.simulator.keyset_routes import SigningKey
from connectors.simulator.world import Faults, SubscriptionPolicy, World
from connectors.vendors.endpoints import credentials, webhook_secrets
from connectors.vendors.google_health_notifications import KEYSET_PATH
from models.providers import Provider
from runtime.service import Service
from runtime.settings import Settings

__all__ = ["RunningSimulator", "SimulatorOptions", "SimulatorService", "running_simulator"]


@dataclass(frozen=True, slots=True)
class SimulatorOptions:
    """How the simulator runs and what its cohort looks like.

    The defaults make a cohort like a real one, about 80% of participant-days valid days (the
    Fitabase export: 739 of 919): non-wear days, partial days, devices that stall for 1-5 days, low
    batteries and a few participants who never sync (``SyntheticCohort``, ``World``).
    ``SimulatorOptions.complete(...)`` is the same with every one of those shares 0: every
    participant-day worn all day and synced (for tests and benchmarks that compare like with like).
    """

    participants: int = 100
    days: int = 14
    seed: int = 2026
    host: str = "127.0.0.1"
    port: int = 0  # 0: a free port
    webhook_base: str | None = None  # the gateway's URL: notifications go to <base>/webhooks/<provider>
    sync_interval_s: float = 5.0
    late_share: float = 0.25
    duplicate_share: float = 0.1
    error_rate: float = 0.0
    timeout_rate: float = 0.0
    hang_s: float = 35.0
    latency_s: float = 0.0
    token_lifetime_s: float | None = None
    google_project_limit: int = 120_000
    non_wear_share: float = 0.08  # participant-days without the tracker on: no steps, no heart rate
    partial_day_share: float = 0.10  # participant-days worn only 3-8 hours (not a valid day)
    stalled_device_share: float = 0.05  # devices that stopped syncing 1-5 days before the end
    low_battery_share: float = 0.10  # devices reporting a battery below 20%
    never_sync_share: float = 0.03  # participants who link but whose tracker never syncs
    webhook_copies: int = 1  # each notification sent this many times, copies out of order (fault tests)
    forged_share: float = 0.0  # share of notifications followed by a tampered copy (must be refused)
    # False: no account lists a paired device. A device's last sync follows the wall clock, so runs
    # compared field by field (the fault tests) leave devices out.
    devices: bool = True

    @classmethod
    def complete(cls, **others: Any) -> SimulatorOptions:
        """Options whose cohort is complete: no non-wear or partial days, no stalled or low-battery
        devices, everyone syncs; ``others`` as for the constructor."""
        gaps = {"non_wear_share": 0.0, "partial_day_share": 0.0, "stalled_device_share": 0.0,
                "low_battery_share": 0.0, "never_sync_share": 0.0}
        return cls(**{**gaps, **others})

    def build_world(self, subscription_policy: SubscriptionPolicy = "automatic") -> World:
        """The simulated vendors' world these options describe (its cohort, syncs and devices)."""
        cohort = SyntheticCohort(self.participants, seed=self.seed, non_wear_share=self.non_wear_share,
                                 partial_day_share=self.partial_day_share, never_sync_share=self.never_sync_share)
        world = World(cohort, days=self.days, seed=self.seed, late_share=self.late_share,
                      duplicate_share=self.duplicate_share, stalled_share=self.stalled_device_share,
                      low_battery_share=self.low_battery_share, token_lifetime_s=self.token_lifetime_s,
                      subscription_policy=subscription_policy)
        world.faults = Faults(error_rate=self.error_rate, timeout_rate=self.timeout_rate, hang_s=self.hang_s,
                              latency_s=self.latency_s)
        world.quota.google_project_per_minute = self.google_project_limit
        world.pairs_devices = self.devices
        return world


@dataclass(frozen=True, slots=True)
class RunningSimulator:
    url: str
    world: World
    delivery: WebhookDelivery | None

    @property
    def keyset_url(self) -> str:
        """Where the simulator publishes the keyset its Google notifications verify under."""
        return self.url + KEYSET_PATH


@contextlib.asynccontextmanager
async def running_simulator(settings: Settings, options: SimulatorOptions) -> AsyncIterator[RunningSimulator]:
    world = options.build_world(settings.gateway.google_subscription_policy)
    signer = SigningKey()  # a fresh key each start, as a vendor's rotation would give
    app = build_simulator_app(world, {p: credentials(settings.vendors, p) for p in Provider}, signer)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, options.host, options.port, backlog=4096)
    await site.start()
    port = runner.addresses[0][1]
    delivery, stop, task = None, asyncio.Event(), None
    if options.webhook_base:
        verify_code, google_token = webhook_secrets(settings.gateway)
        base = options.webhook_base.rstrip("/")
        delivery = WebhookDelivery(world, fitbit_url=f"{base}/webhooks/fitbit",
                                   google_url=f"{base}/webhooks/google_health",
                                   fitbit_secret=credentials(settings.vendors, Provider.FITBIT).client_secret,
                                   fitbit_verify_code=verify_code, google_token=google_token,
                                   signer=signer, interval_s=options.sync_interval_s,
                                   copies=options.webhook_copies, forged_share=options.forged_share)
        task = asyncio.ensure_future(delivery.run(stop))
    try:
        yield RunningSimulator(f"http://{options.host}:{port}", world, delivery)
    finally:
        stop.set()
        if task:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(task, 15)
        await runner.cleanup()


class SimulatorService(Service):
    """The simulator as a :class:`~runtime.service.Service`; ready once it listens.

    ``sim`` is the :class:`RunningSimulator` (its URL and world) once started.
    """

    name = "simulator"

    def __init__(self, settings: Settings, options: SimulatorOptions) -> None:
        super().__init__()
        self._settings, self._options = settings, options
        self._stack = contextlib.AsyncExitStack()
        self._running: RunningSimulator | None = None

    @property
    def sim(self) -> RunningSimulator:
        assert self._running is not None, "the simulator is not started"
        return self._running

    async def start(self) -> None:
        self._running = await self._stack.enter_async_context(running_simulator(self._settings, self._options))

    async def stop(self) -> None:
        await self._stack.aclose()
