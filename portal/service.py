"""``PortalService``: the participant portal as a process part, and ``running_portal``, the app
served on a socket with its own HTTP session and vendor clients."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web
from aiokafka import AIOKafkaProducer

from connectors.vault import TokenVault
from connectors.vendors.registry import aclose_all, build_clients
from portal.app import build_portal_app
from runtime.kafka import make_producer
from runtime.service import Service, local_address
from runtime.settings import Settings
from sinks.dataset import Dataset

__all__ = ["PortalService", "running_portal"]


@contextlib.asynccontextmanager
async def running_portal(settings: Settings, vault: TokenVault, producer: AIOKafkaProducer, *,
                         host: str = "127.0.0.1", port: int | None = None) -> AsyncIterator[str]:
    """Serve the portal; yields its base URL. Its vendor clients and their HTTP session are its own."""
    async with aiohttp.ClientSession() as session:
        clients = build_clients(settings.vendors, session)
        try:
            app = build_portal_app(settings, vault, producer, clients, Dataset(settings.dataset_location))
            runner = web.AppRunner(app, access_log=None, handle_signals=False)  # an access log would show tokens
            await runner.setup()
            try:
                site = web.TCPSite(runner, host, settings.portal.port if port is None else port)
                await site.start()
                yield f"http://{local_address(host)}:{runner.addresses[0][1]}"
            finally:
                await runner.cleanup()
        finally:
            await aclose_all(clients)


class PortalService(Service):
    """The portal as a :class:`~runtime.service.Service`: its own producer plus the HTTP app,
    ready once the producer is up and the socket listens (``.url`` then says where).

    :param vault: the token vault (links are stored and read there).
    :param host: the address to listen on; ``WEARABLES_PORTAL_HOST`` (loopback) when None.
    :param port: where to listen; ``WEARABLES_PORTAL_PORT`` when None, any free port when 0.
    """

    name = "portal"

    def __init__(self, settings: Settings, *, bootstrap: str, vault: TokenVault, host: str | None = None,
                 port: int | None = None) -> None:
        super().__init__()
        self._settings, self._bootstrap, self._vault, self._port = settings, bootstrap, vault, port
        self._host = settings.portal.host if host is None else host  # WEARABLES_PORTAL_HOST
        self._stack = contextlib.AsyncExitStack()
        self.url = ""

    async def start(self) -> None:
        try:
            producer = make_producer(self._settings, self._bootstrap)
            await producer.start()
            self._stack.push_async_callback(producer.stop)
            self.url = await self._stack.enter_async_context(
                running_portal(self._settings, self._vault, producer, host=self._host, port=self._port))
        except BaseException:
            await self._stack.aclose()  # a start that fails cleans up after itself
            raise

    async def stop(self) -> None:
        await self._stack.aclose()
