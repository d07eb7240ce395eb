"""The simulator's webhooks: each subscriber is verified the vendor's way first, then told of
every device sync, Fitbit's signed with the client secret."""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import AsyncIterator

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from connectors.simulator.cohort import SyntheticCohort
from connectors.simulator.delivery import WebhookDelivery
from connectors.simulator.world import World
from connectors.vendors import fitbit_spec, google_health_spec
from models.providers import Provider

SECRET, CODE, TOKEN = "fitbit-secret", "verify-code", "google-token"


class Subscriber:
    """A gateway stand-in that answers the handshakes as ours does and keeps what it was sent."""

    def __init__(self) -> None:
        self.fitbit: list[list[dict[str, str]]] = []
        self.google: list[dict[str, object]] = []
        self.verifications = {Provider.FITBIT: 0, Provider.GOOGLE_HEALTH: 0}

    def app(self) -> web.Application:
        app = web.Application()
        app.add_routes([web.get("/webhooks/fitbit", self.fitbit_verify), web.post("/webhooks/fitbit", self.on_fitbit),
                        web.post("/webhooks/google_health", self.on_google)])
        return app

    async def fitbit_verify(self, request: web.Request) -> web.Response:
        self.verifications[Provider.FITBIT] += 1
        return web.Response(status=204 if request.query.get(fitbit_spec.VERIFY_PARAMETER) == CODE else 404)

    async def on_fitbit(self, request: web.Request) -> web.Response:
        body = await request.read()
        expected = fitbit_spec.signature(body, SECRET)
        if not hmac.compare_digest(request.headers.get(fitbit_spec.SIGNATURE_HEADER, ""), expected):
            return web.Response(status=404)
        self.fitbit.append(orjson.loads(body))
        return web.Response(status=204)

    async def on_google(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != TOKEN:
            return web.Response(status=401)
        data = orjson.loads(await request.read())
        if data["type"] == "verification":
            self.verifications[Provider.GOOGLE_HEALTH] += 1
            return web.Response(status=201)
        self.google.append(data)
        return web.Response(status=204)


@pytest.fixture
async def subscriber() -> AsyncIterator[tuple[Subscriber, str]]:
    found = Subscriber()
    async with TestServer(found.app()) as server:
        yield found, str(server.make_url("")).rstrip("/")


async def test_verified_subscribers_hear_of_every_sync(subscriber: tuple[Subscriber, str]) -> None:
    found, url = subscriber
    world = World(SyntheticCohort(2, seed=3), days=3, late_share=1.0, duplicate_share=0.0)
    for provider in Provider:
        world.account(provider, world.cohort.participant_ids[0]).subscribed = True
    delivery = WebhookDelivery(world, fitbit_url=f"{url}/webhooks/fitbit", google_url=f"{url}/webhooks/google_health",
                               fitbit_secret=SECRET, fitbit_verify_code=CODE, google_token=TOKEN, interval_s=0.02)
    stop = asyncio.Event()
    task = asyncio.ensure_future(delivery.run(stop))
    for _ in range(200):
        if world.fully_synced():
            break
        await asyncio.sleep(0.02)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert delivery.verified == {Provider.FITBIT: True, Provider.GOOGLE_HEALTH: True}
    assert found.verifications == {Provider.FITBIT: 2, Provider.GOOGLE_HEALTH: 1}  # right code and a wrong one
    (fitbit,) = found.fitbit
    assert {n["collectionType"] for n in fitbit} == set(fitbit_spec.COLLECTIONS)
    assert {n["ownerId"] for n in fitbit} == {world.account(Provider.FITBIT, world.cohort.participant_ids[0]).user_id}
    assert [n["dataType"] for n in found.google] == list(google_health_spec.DATA_TYPES)
    assert world.stats["webhooks_acknowledged"] == 1 + len(google_health_spec.DATA_TYPES)
