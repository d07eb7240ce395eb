"""The gateway app: health, the webhook routes mounted with our secrets, large bodies refused,
served on a port by ``running_gateway``, and Google's keyset fetched from where the settings say
(the simulator's when pointed at it) (the webhook logic itself: test_webhooks.py)."""

from __future__ import annotations

from pathlib import Path

import aiohttp
from aiohttp.test_utils import TestClient, TestServer

from connectors.gateway import GatewayService, build_gateway_app, google_keysets, running_gateway
from connectors.vault import open_vault
from connectors.vendors.endpoints import DEMO_SECRETS
from connectors.vendors.google_health_notifications import KEYSET_PATH, KEYSET_URL
from runtime.settings import Settings


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
            huge = await http.post("/webhooks/fitbit", data=b"[" + b" " * (2 << 20) + b"]")
            assert huge.status == 413
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
