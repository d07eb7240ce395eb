"""``wearables gateway``: the aiohttp app vendors and participants talk to (webhooks now; the
linking pages join it in a later issue), and ``GatewayService``, the process around it."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from aiohttp import web
from aiokafka import AIOKafkaProducer

from connectors.vault import TokenVault
from connectors.vendors.endpoints import credentials, webhook_secrets
from connectors.vendors.google_health_notifications import KeysetCache, keyset_url
from connectors.webhooks import WebhookReceiver
from models.providers import Provider
from models.topics import raw_topic_suffix
from runtime.kafka import make_producer
from runtime.service import Service, local_address
from runtime.settings import Settings

__all__ = ["GatewayService", "build_gateway_app", "google_keysets", "running_gateway"]


def google_keysets(settings: Settings) -> KeysetCache:
    """The cache of Google's webhook keyset, from where the settings say (``keyset_url``)."""
    return KeysetCache(keyset_url(settings.gateway, settings.vendors))


def build_gateway_app(settings: Settings, vault: TokenVault, producer: AIOKafkaProducer,
                      keysets: KeysetCache | None = None, *, body_timeout: float = 5.0) -> web.Application:
    """The gateway's routes; ``keysets`` defaults to ``google_keysets(settings)`` and is closed
    with the app. A request body must arrive within ``body_timeout`` seconds (else 408)."""
    verify_code, google_token = webhook_secrets(settings.gateway)
    keysets = google_keysets(settings) if keysets is None else keysets
    receiver = WebhookReceiver(vault, producer, fetch_topic=settings.topic("fetch-requests"),
                               raw_topic=settings.topic(raw_topic_suffix(Provider.GOOGLE_HEALTH)),
                               fitbit_secret=credentials(settings.vendors, Provider.FITBIT).client_secret,
                               fitbit_verify_code=verify_code, google_token=google_token, keysets=keysets,
                               repeat_window=settings.gateway.webhook_repeat_window,
                               backfill_days=settings.scheduler.backfill_days, body_timeout=body_timeout)
    # notifications are small: refuse anything large. No lingering after an answer given before
    # the whole body came (408, 413): aiohttp would otherwise read a trickling body 10 s more.
    app = web.Application(client_max_size=1 << 20, handler_args={"lingering_time": 0})
    app.cleanup_ctx.append(receiver.deferred_publisher)

    async def close_keysets(_: web.Application) -> None:
        await keysets.aclose()

    app.on_cleanup.append(close_keysets)

    async def health(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app.add_routes([*receiver.routes(), web.get("/healthz", health)])
    return app


@contextlib.asynccontextmanager
async def running_gateway(settings: Settings, vault: TokenVault, producer: AIOKafkaProducer, *,
                          host: str = "127.0.0.1", port: int | None = None,
                          keysets: KeysetCache | None = None) -> AsyncIterator[str]:
    """Serve the gateway; yields its base URL."""
    runner = web.AppRunner(build_gateway_app(settings, vault, producer, keysets), access_log=None,
                           handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, settings.gateway.port if port is None else port)
    await site.start()
    bound = runner.addresses[0][1]
    try:
        yield f"http://{local_address(host)}:{bound}"
    finally:
        await runner.cleanup()


class GatewayService(Service):
    """The gateway as a :class:`~runtime.service.Service`: its own producer plus the HTTP app,
    ready once the producer is up and the socket listens.

    ``keysets`` is its cache of Google's webhook keyset; a composition that starts the simulator
    after the gateway points it there with ``keysets.retarget(...)``.

    :param vault: the token vault (webhooks are mapped to participants through it).
    :param host: the address to listen on; ``WEARABLES_GATEWAY_HOST`` (loopback) when None.
    :param port: where to listen; ``WEARABLES_GATEWAY_PORT`` when None, any free port when 0.
    """

    name = "gateway"

    def __init__(self, settings: Settings, *, bootstrap: str, vault: TokenVault, host: str | None = None,
                 port: int | None = None) -> None:
        super().__init__()
        self._settings, self._bootstrap, self._vault, self._port = settings, bootstrap, vault, port
        self._host = settings.gateway.host if host is None else host  # WEARABLES_GATEWAY_HOST
        self._stack = contextlib.AsyncExitStack()
        self.keysets = google_keysets(settings)
        self.url = ""

    async def start(self) -> None:
        producer = make_producer(self._settings, self._bootstrap)
        await producer.start()
        self._stack.push_async_callback(producer.stop)
        self.url = await self._stack.enter_async_context(
            running_gateway(self._settings, self._vault, producer, host=self._host, port=self._port,
                            keysets=self.keysets))

    async def stop(self) -> None:
        await self._stack.aclose()
