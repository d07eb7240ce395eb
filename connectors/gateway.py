"""``wearables gateway``: the aiohttp app vendors and participants talk to (webhooks now; the
linking pages join it in a later issue)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from aiohttp import web
from aiokafka import AIOKafkaProducer

from connectors.vault import TokenVault
from connectors.vendors.endpoints import credentials, webhook_secrets
from connectors.webhooks import WebhookReceiver
from models.providers import Provider
from runtime.settings import Settings

__all__ = ["build_gateway_app", "running_gateway"]


def build_gateway_app(settings: Settings, vault: TokenVault, producer: AIOKafkaProducer) -> web.Application:
    verify_code, google_token = webhook_secrets(settings)
    receiver = WebhookReceiver(vault, producer, fetch_topic=settings.topic("fetch-requests"),
                               fitbit_secret=credentials(settings, Provider.FITBIT).client_secret,
                               fitbit_verify_code=verify_code, google_token=google_token,
                               repeat_window=settings.webhook_repeat_window)
    app = web.Application(client_max_size=1 << 20)  # notifications are small; refuse anything large
    app.cleanup_ctx.append(receiver.deferred_publisher)

    async def health(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app.add_routes([*receiver.routes(), web.get("/healthz", health)])
    return app


@contextlib.asynccontextmanager
async def running_gateway(settings: Settings, vault: TokenVault, producer: AIOKafkaProducer, *,
                          host: str = "127.0.0.1", port: int | None = None) -> AsyncIterator[str]:
    """Serve the gateway; yields its base URL."""
    runner = web.AppRunner(build_gateway_app(settings, vault, producer), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, settings.gateway_port if port is None else port)
    await site.start()
    bound = runner.addresses[0][1]
    try:
        yield f"http://{host}:{bound}"
    finally:
        await runner.cleanup()
