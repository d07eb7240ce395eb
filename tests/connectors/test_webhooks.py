"""The webhook receiver: vendor handshakes, forged/malformed/replayed notifications refused and
counted, nothing published for them; good ones become fetch requests on the topic; a repeated
Fitbit body (replay or genuine re-sync: indistinguishable) is folded into one fetch at the end
of its window, or at shutdown."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import REGISTRY

from cli.topics import create_all_topics
from connectors.gateway import build_gateway_app
from connectors.oauth import TokenSet
from connectors.vault import open_vault
from connectors.vendors.endpoints import DEMO_SECRETS
from connectors.vendors.fitbit_spec import signature as fitbit_signature
from models.fetch import FetchReason, FetchRequest
from models.providers import Provider
from runtime.kafka import make_producer
from runtime.settings import Settings
from tests.integration.test_normalize_agent import _drain

pytestmark = pytest.mark.integration
FITBIT_USER, GOOGLE_USER = "ABC123", "4242424242"


def _count(outcome: str, provider: str) -> float:
    return REGISTRY.get_sample_value("wearables_gateway_webhooks_total",
                                     {"provider": provider, "outcome": outcome}) or 0.0


async def test_webhooks_verify_refuse_and_publish(settings_factory: Callable[..., Settings]) -> None:
    settings = settings_factory(webhook_repeat_window=0.5)
    await create_all_topics(settings)
    producer = make_producer(settings)
    await producer.start()
    tokens = TokenSet("a", "r", time.time() + 3600)
    before = {(o, p): _count(o, p) for o in ("bad_signature", "malformed", "replayed", "bad_authorization",
                                             "deferred_published")
              for p in ("fitbit", "google_health")}
    try:
        async with open_vault(settings) as vault:
            await vault.link("R" + "1" * 20, Provider.FITBIT, FITBIT_USER, tokens)
            await vault.link("R" + "2" * 20, Provider.GOOGLE_HEALTH, GOOGLE_USER, tokens)
            async with TestClient(TestServer(build_gateway_app(settings, vault, producer))) as http:
                await _fitbit_cases(http)
                await _google_cases(http)
            await producer.flush()
    finally:
        await producer.stop()

    published = [FetchRequest.from_bytes(v) for v in await _drain(settings, "fetch-requests",
                                                                    until=lambda vs: len(vs) >= 5, timeout=5)]
    assert sorted((r.provider, r.data_type, r.start_date, r.end_date, r.reason) for r in published) == [
        # each Fitbit body: once when accepted, once more for its repeats (timer, then shutdown)
        (Provider.FITBIT, "activities", "2026-11-20", "2026-11-20", FetchReason.WEBHOOK),
        (Provider.FITBIT, "activities", "2026-11-20", "2026-11-20", FetchReason.WEBHOOK),
        (Provider.FITBIT, "activities", "2026-11-21", "2026-11-21", FetchReason.WEBHOOK),
        (Provider.FITBIT, "activities", "2026-11-21", "2026-11-21", FetchReason.WEBHOOK),
        (Provider.GOOGLE_HEALTH, "steps", "2026-11-19", "2026-11-20", FetchReason.WEBHOOK),
    ]
    counted = {key: _count(*key) - value for key, value in before.items()}
    assert counted == {("bad_signature", "fitbit"): 2, ("malformed", "fitbit"): 4, ("replayed", "fitbit"): 3,
                       ("bad_authorization", "fitbit"): 0, ("bad_signature", "google_health"): 0,
                       ("malformed", "google_health"): 3, ("replayed", "google_health"): 1,
                       ("bad_authorization", "google_health"): 2, ("deferred_published", "fitbit"): 2,
                       ("deferred_published", "google_health"): 0}


async def _fitbit_cases(http: TestClient) -> None:
    secret = DEMO_SECRETS["fitbit_client_secret"]
    # the subscriber verification handshake: 204 for our code, 404 for any other
    assert (await http.get("/webhooks/fitbit", params={"verify": DEMO_SECRETS["fitbit_verify_code"]})).status == 204
    assert (await http.get("/webhooks/fitbit", params={"verify": "not-our-code"})).status == 404
    body = orjson.dumps([{"collectionType": "activities", "date": "2026-11-20", "ownerId": FITBIT_USER,
                          "ownerType": "user", "subscriptionId": "s1"}])
    # forged: no signature, a signature made with another secret → 404, as Fitbit expects
    assert (await http.post("/webhooks/fitbit", data=body)).status == 404
    forged = fitbit_signature(body, "someone-else")
    assert (await http.post("/webhooks/fitbit", data=body, headers={"X-Fitbit-Signature": forged})).status == 404
    # malformed, though correctly signed
    for bad in (b"not json", b"{}", orjson.dumps([{"date": "2026-11-20"}]),
                orjson.dumps([{"ownerId": FITBIT_USER, "date": "20 Nov"}])):
        answer = await http.post("/webhooks/fitbit", data=bad, headers={"X-Fitbit-Signature":
                                                                         fitbit_signature(bad, secret)})
        assert answer.status == 400
    good = {"X-Fitbit-Signature": fitbit_signature(body, secret)}
    assert (await http.post("/webhooks/fitbit", data=body, headers=good)).status == 204
    deferred = _count("deferred_published", "fitbit")
    for _ in range(2):  # repeats: acknowledged as Fitbit wants, nothing published yet
        assert (await http.post("/webhooks/fitbit", data=body, headers=good)).status == 204
    assert _count("deferred_published", "fitbit") == deferred
    for _ in range(40):  # the window (0.5 s) closes: one fetch for both repeats
        if _count("deferred_published", "fitbit") > deferred:
            break
        await asyncio.sleep(0.1)
    assert _count("deferred_published", "fitbit") == deferred + 1
    # a repeat still owed when the gateway stops is published at shutdown, not lost
    later = body.replace(b"2026-11-20", b"2026-11-21")
    signed = {"X-Fitbit-Signature": fitbit_signature(later, secret)}
    assert (await http.post("/webhooks/fitbit", data=later, headers=signed)).status == 204
    assert (await http.post("/webhooks/fitbit", data=later, headers=signed)).status == 204


async def _google_cases(http: TestClient) -> None:
    auth = {"Authorization": DEMO_SECRETS["google_webhook_token"]}
    verification = b'{"type": "verification"}'
    assert (await http.post("/webhooks/google_health", data=verification, headers=auth)).status == 201
    assert (await http.post("/webhooks/google_health", data=verification)).status == 401
    body = orjson.dumps({"type": "notification", "notificationId": "n1", "user": f"users/{GOOGLE_USER}",
                         "dataType": "steps", "interval": {"startTime": "2026-11-19T00:00:00Z",
                                                           "endTime": "2026-11-21T00:00:00Z"}})
    assert (await http.post("/webhooks/google_health", data=body,
                            headers={"Authorization": "wrong"})).status == 401
    for bad in (b"[]", orjson.dumps({"type": "notification", "user": "nobody"}),
                orjson.dumps({"type": "notification", "user": f"users/{GOOGLE_USER}", "dataType": "steps",
                              "interval": {"startTime": "yesterday", "endTime": "today"}})):
        assert (await http.post("/webhooks/google_health", data=bad, headers=auth)).status == 400
    assert (await http.post("/webhooks/google_health", data=body, headers=auth)).status == 204
    assert (await http.post("/webhooks/google_health", data=body, headers=auth)).status == 409
