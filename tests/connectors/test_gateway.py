"""The gateway app: health, the webhook routes mounted with our secrets, large bodies refused,
and served on a port by ``running_gateway`` (the webhook logic itself: test_webhooks.py)."""

from __future__ import annotations

from pathlib import Path

import aiohttp
from aiohttp.test_utils import TestClient, TestServer

from connectors.gateway import build_gateway_app, running_gateway
from connectors.vault import open_vault
from connectors.vendors.endpoints import DEMO_SECRETS
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
