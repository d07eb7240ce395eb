"""The gateway app: health, the webhook routes mounted with our secrets, large bodies refused,
served on a port by ``running_gateway``, and Google's keyset fetched from where the settings say
(the simulator's when pointed at it) (the webhook logic itself: test_webhooks.py)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp
import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import REGISTRY

from cli.topics import create_all_topics
from connectors.gateway import GatewayService, build_gateway_app, google_keysets, running_gateway
from connectors.oauth import TokenSet
from connectors.vault import open_vault
from connectors.vendors.endpoints import DEMO_SECRETS
from connectors.vendors.fitbit_spec import signature as fitbit_signature
from connectors.vendors.google_health_notifications import KEYSET_PATH, KEYSET_URL
from models.fetch import FetchRequest
from models.providers import Provider
from runtime.broker import EmbeddedBroker
from runtime.kafka import make_producer
from runtime.settings import Settings
from tests.integration.test_normalize_agent import _drain


def _count(outcome: str, provider: str = "fitbit") -> float:
    return REGISTRY.get_sample_value("wearables_gateway_webhooks_total",
                                     {"provider": provider, "outcome": outcome}) or 0.0


class Producer:
    async def send(self, topic: str, value: bytes, key: bytes | None = None) -> None:
        raise AssertionError("nothing here publishes")


async def test_health_webhooks_and_body_limit(tmp_path: Path) -> None:
    settings = Settings.model_validate({"env": "demo", "data_dir": tmp_path})
    async with open_vault(settings) as vault:
        app = build_gateway_app(settings, vault, Producer())  # type: ignore[arg-type]
        async with TestClient(TestServer(app)) as http:
            assert await (await http.get("/healthz")).json() == {"status": "ok"}
            verify = await http.get("/webhooks/fitbit", params={"verify": DEMO_SECRETS["fitbit_verify_code"]})
            assert verify.status == 204
            too_large = _count("too_large")
            huge = await http.post("/webhooks/fitbit", data=b"[" + b" " * (2 << 20) + b"]")
            assert huge.status == 413
            assert _count("too_large") == too_large + 1  # counted, like every other refusal
        gateway = running_gateway(settings, vault, Producer(), port=0)  # type: ignore[arg-type]
        async with gateway as url, aiohttp.ClientSession() as session, session.get(f"{url}/healthz") as answer:
            assert url.startswith("http://127.0.0.1:") and answer.status == 200


def test_the_google_keyset_comes_from_the_settings(tmp_path: Path) -> None:
    settings = Settings.model_validate({"env": "demo", "data_dir": tmp_path})
    assert google_keysets(settings).url == KEYSET_URL
    simulated = settings.with_overrides(vendor_api_base="http://127.0.0.1:8471")
    assert google_keysets(simulated).url == "http://127.0.0.1:8471" + KEYSET_PATH  # the simulator signs there
    service = GatewayService(simulated, bootstrap="", vault=None, port=0)  # type: ignore[arg-type]
    assert service.keysets.url == "http://127.0.0.1:8471" + KEYSET_PATH


async def test_the_gateway_refuses_unsigned_google_notifications_and_closes_its_keyset(tmp_path: Path) -> None:
    settings = Settings.model_validate({"env": "demo", "data_dir": tmp_path})
    keysets = google_keysets(settings)
    async with open_vault(settings) as vault:
        app = build_gateway_app(settings, vault, Producer(), keysets)  # type: ignore[arg-type]
        async with TestClient(TestServer(app)) as http:
            answer = await http.post("/webhooks/google_health", data=b'[{"data": {}}]',
                                     headers={"Authorization": DEMO_SECRETS["google_webhook_token"]})
            assert answer.status == 401  # no signature: refused before any key is needed
            verification = await http.post("/webhooks/google_health", data=b'{"type": "verification"}')
            assert verification.status == 401
        assert keysets.age_s() == float("inf")  # nothing fetched: no call needed keys


@pytest.mark.parametrize("path", ["/webhooks/fitbit", "/webhooks/google_health"])
async def test_a_trickled_body_is_answered_408_and_its_connection_closed(tmp_path: Path, path: str) -> None:
    settings = Settings.model_validate({"env": "demo", "data_dir": tmp_path})
    provider = path.rsplit("/", 1)[1]
    timeouts = _count("body_timeout", provider)
    async with open_vault(settings) as vault:
        app = build_gateway_app(settings, vault, Producer(), body_timeout=0.5)  # type: ignore[arg-type]
        async with TestServer(app) as server:
            reader, writer = await asyncio.open_connection(server.host, server.port)

            async def trickle() -> None:  # one byte every 0.1 s of a 1,000-byte body: never done
                writer.write(f"POST {path} HTTP/1.1\r\nHost: gateway\r\nContent-Length: 1000\r\n\r\n".encode())
                with contextlib.suppress(OSError):
                    for _ in range(1000):
                        writer.write(b" ")
                        await writer.drain()
                        await asyncio.sleep(0.1)

            sender = asyncio.ensure_future(trickle())
            try:
                started = time.monotonic()
                status_line = await asyncio.wait_for(reader.readline(), 5)
                assert status_line.split()[1] == b"408"
                await asyncio.wait_for(reader.read(), 5)  # then EOF: the connection is closed, not held
                assert time.monotonic() - started < 5
            finally:
                sender.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sender
                writer.close()
    assert _count("body_timeout", provider) == timeouts + 1


@pytest.mark.integration
@pytest.mark.timeout(180)
async def test_a_webhook_during_a_kafka_outage_is_answered_503_and_its_retry_reaches_kafka(
        settings_factory: Callable[..., Settings], tmp_path: Path) -> None:
    """Audit finding 8: the gateway acknowledges nothing Kafka does not have. The broker is
    stopped under a running gateway: the notification is answered 503 within Fitbit's 5 s, and
    once the broker is back (same address) Fitbit's retry is answered 204 and is on the topic."""
    own = EmbeddedBroker(log_path=tmp_path / "broker.log", ready_timeout=60)
    await own.start()
    back = EmbeddedBroker(own.port, log_path=tmp_path / "broker-back.log", ready_timeout=60)
    settings = settings_factory(kafka_bootstrap_servers=own.bootstrap)
    body = orjson.dumps([{"collectionType": "activities", "date": "2026-11-20", "ownerId": "ABC123",
                          "ownerType": "user", "subscriptionId": "s1"}])
    signed = {"X-Fitbit-Signature": fitbit_signature(body, DEMO_SECRETS["fitbit_client_secret"])}
    failed = _count("publish_failed")
    try:
        await create_all_topics(settings)
        producer = make_producer(settings)
        await producer.start()
        try:
            async with open_vault(settings) as vault:
                await vault.link("R" + "1" * 20, Provider.FITBIT, "ABC123", TokenSet("a", "r", time.time() + 3600))
                async with TestClient(TestServer(build_gateway_app(settings, vault, producer))) as http:
                    await asyncio.to_thread(own.stop)
                    started = time.monotonic()
                    assert (await http.post("/webhooks/fitbit", data=body, headers=signed)).status == 503
                    assert time.monotonic() - started < 5  # inside Fitbit's deadline
                    assert _count("publish_failed") == failed + 1
                    await back.start()
                    await create_all_topics(settings)
                    deadline = time.monotonic() + 60
                    while (status := (await http.post("/webhooks/fitbit", data=body, headers=signed)).status) != 204:
                        assert status == 503 and time.monotonic() < deadline  # Fitbit retries until a 2xx
                        await asyncio.sleep(0.5)
        finally:
            await producer.stop()
        published = [FetchRequest.from_bytes(v) for v in await _drain(settings, "fetch-requests",
                                                                        until=lambda vs: len(vs) >= 1, timeout=30)]
        assert [(f.provider, f.data_type, f.start_date) for f in published][:1] == [
            (Provider.FITBIT, "activities", "2026-11-20")]
    finally:
        back.stop()
        own.stop()
