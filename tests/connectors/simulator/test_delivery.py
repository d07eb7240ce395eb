"""The simulator's webhooks: each subscriber is verified the vendor's way first, then told of
every device sync, Fitbit's signed with the client secret, Google's in the documented shape,
signed under the served keyset (checked with the gateway's own verifier, and by the gateway
itself), under both header names; withdrawn samples are announced with a DELETE."""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from datetime import time as dtime
from pathlib import Path

import aiohttp
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from connectors.gateway import build_gateway_app
from connectors.oauth import TokenSet
from connectors.simulator.app import build_simulator_app
from connectors.simulator.cohort import SyntheticCohort
from connectors.simulator.delivery import WebhookDelivery
from connectors.simulator.keyset_routes import SigningKey
from connectors.simulator.world import World
from connectors.vault import open_vault
from connectors.vendors import fitbit_spec, google_health_spec
from connectors.vendors.endpoints import DEMO_SECRETS
from connectors.vendors.google_health_notifications import (
    KEYSET_PATH,
    SIGNATURE_HEADERS,
    KeysetCache,
    Notification,
    Verdict,
    parse_keyset,
    parse_notifications,
    verify_signature,
)
from models.fetch import FetchRequest
from models.providers import Provider
from models.raw import RawPage
from runtime.settings import Settings
from tests.connectors.simulator.conftest import CLIENTS

SECRET, CODE, TOKEN = "fitbit-secret", "verify-code", "google-token"


@dataclass
class Subscriber:
    """A gateway stand-in that answers the handshakes as ours does, verifies Google signatures
    with the gateway's verifier against the simulator's served keyset, and keeps what it was sent."""

    keyset_url: str = ""
    fitbit: list[list[dict[str, str]]] = field(default_factory=list)
    google: list[Notification] = field(default_factory=list)
    headers: list[str] = field(default_factory=list)  # the signature header each Google body came under
    verifications: dict[Provider, int] = field(default_factory=lambda: {p: 0 for p in Provider})

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
        body = await request.read()
        if orjson.loads(body) == {"type": "verification"}:
            if request.headers.get("Authorization") != TOKEN:
                return web.Response(status=401)
            self.verifications[Provider.GOOGLE_HEALTH] += 1
            return web.Response(status=201)
        async with aiohttp.ClientSession() as session, session.get(self.keyset_url) as answer:
            keyset = parse_keyset(await answer.read())
        (name,) = [name for name in SIGNATURE_HEADERS if name in request.headers]
        if verify_signature(body, request.headers[name], keyset) is not Verdict.VALID:
            return web.Response(status=403)
        self.headers.append(name)
        self.google += parse_notifications(body)
        return web.Response(status=204)


@dataclass
class Rig:
    world: World
    delivery: WebhookDelivery
    subscriber: Subscriber
    google_url: str


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    world = World(SyntheticCohort(2, seed=3), days=3, late_share=1.0, duplicate_share=0.0,
                  subscription_policy="manual")
    signer = SigningKey()
    found = Subscriber()
    async with TestServer(build_simulator_app(world, CLIENTS, signer)) as sim, TestServer(found.app()) as server:
        found.keyset_url = str(sim.make_url(KEYSET_PATH))
        url = str(server.make_url("")).rstrip("/")
        delivery = WebhookDelivery(world, fitbit_url=f"{url}/webhooks/fitbit",
                                   google_url=f"{url}/webhooks/google_health", fitbit_secret=SECRET,
                                   fitbit_verify_code=CODE, google_token=TOKEN, signer=signer, interval_s=0.02)
        yield Rig(world, delivery, found, f"{url}/webhooks/google_health")


async def test_verified_subscribers_hear_of_every_sync(rig: Rig) -> None:
    world, found = rig.world, rig.subscriber
    person = world.cohort.participant_ids[0]
    for provider in Provider:
        world.account(provider, person).subscribed = True
    stop = asyncio.Event()
    task = asyncio.ensure_future(rig.delivery.run(stop))
    for _ in range(200):
        if world.fully_synced():
            break
        await asyncio.sleep(0.02)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert rig.delivery.verified == {Provider.FITBIT: True, Provider.GOOGLE_HEALTH: True}
    assert found.verifications == {Provider.FITBIT: 2, Provider.GOOGLE_HEALTH: 1}  # right code and a wrong one
    (fitbit,) = found.fitbit
    assert {n["collectionType"] for n in fitbit} == set(fitbit_spec.COLLECTIONS)
    assert {n["ownerId"] for n in fitbit} == {world.account(Provider.FITBIT, person).user_id}
    google = world.account(Provider.GOOGLE_HEALTH, person)
    # one signed array, a notification per data type, its interval the synced local days
    assert [(n.health_user_id, n.operation, n.data_type) for n in found.google] == [
        (google.user_id, "UPSERT", data_type) for data_type in google_health_spec.DATA_TYPES]
    interval = found.google[0].intervals[0]
    assert interval.civil_start is not None and interval.civil_start.time() == dtime()  # a local midnight
    assert interval.civil_end == datetime.combine(world.last_day + timedelta(days=1), dtime())
    assert interval.start is not None and interval.start.timestamp() == world.midnight(
        google, interval.civil_start.date())  # the same instant, in UTC
    assert found.headers == [SIGNATURE_HEADERS[0]]
    assert world.stats["webhooks_acknowledged"] == 2


async def test_deletions_and_restorations_are_announced_under_both_headers(rig: Rig) -> None:
    world, found = rig.world, rig.subscriber
    account = world.account(Provider.GOOGLE_HEALTH, world.cohort.participant_ids[1])
    account.subscribed, account.synced_until = True, world.data_end  # nothing left to sync
    start = world.midnight(account, world.last_day) + 3600
    world.delete_samples(account, "heart-rate", start, start + 600)
    world.delete_samples(account, "sleep", start, start + 60)
    assert world.deleted(account.participant_id, "heart-rate") == [(start, start + 600)]
    assert world.restore_samples(account, "sleep", start, start + 60)
    assert not world.restore_samples(account, "sleep", start, start + 60)  # nothing left to restore
    assert world.deleted(account.participant_id, "sleep") == [] and list(world.deletions) == [
        (account.participant_id, "heart-rate")]
    async with aiohttp.ClientSession() as session:
        await rig.delivery.round(session)
        await rig.delivery.round(session)  # announced once
    assert [(n.operation, n.data_type) for n in found.google] == [("DELETE", "heart-rate"), ("DELETE", "sleep"),
                                                                  ("UPSERT", "sleep")]  # in the order they happened
    deletion = found.google[0].intervals[0]
    assert deletion.start is not None and deletion.end is not None
    assert (deletion.start.timestamp(), deletion.end.timestamp()) == (start, start + 600)
    assert deletion.civil_start is not None and deletion.civil_start.hour == 1  # 01:00 on the local wall clock
    assert found.headers == [*SIGNATURE_HEADERS, SIGNATURE_HEADERS[0]]  # the two header names, alternately


async def test_changes_wait_for_a_verified_subscriber_and_skip_the_unsubscribed(rig: Rig) -> None:
    world, found = rig.world, rig.subscriber
    subscribed, other = (world.account(Provider.GOOGLE_HEALTH, p) for p in world.cohort.participant_ids)
    subscribed.subscribed = True
    for account in (subscribed, other):
        account.synced_until = world.data_end  # nothing to sync: only the deletions are news
        world.delete_samples(account, "steps", 0.0, 60.0)
    world.delete_samples(world.account(Provider.FITBIT, other.participant_id), "steps", 0.0, 60.0)
    rig.delivery.urls[Provider.GOOGLE_HEALTH] = "http://127.0.0.1:9/webhooks/google_health"  # nobody listens
    async with aiohttp.ClientSession() as session:
        await rig.delivery.round(session)
        assert not rig.delivery.verified[Provider.GOOGLE_HEALTH] and found.google == []
        rig.delivery.urls[Provider.GOOGLE_HEALTH] = rig.google_url  # the subscriber is up: the queue is sent
        await rig.delivery.round(session)
    # MANUAL: only the subscribed account is told (and Fitbit announces no deletions at all)
    assert [(n.health_user_id, n.operation) for n in found.google] == [(subscribed.user_id, "DELETE")]
    assert world.take_changes() == []


async def test_the_gateway_verifies_what_the_simulator_sends(tmp_path: Path) -> None:
    """The simulator's signed notifications, through the real gateway app keyed by the served keyset."""
    settings = Settings.model_validate({"env": "demo", "data_dir": tmp_path})
    world = World(SyntheticCohort(1, seed=4), days=2, late_share=1.0, duplicate_share=0.0)  # AUTOMATIC
    signer = SigningKey()
    sent: list[tuple[str, bytes]] = []

    class Recorder:
        async def send(self, topic: str, value: bytes, key: bytes | None = None) -> asyncio.Future[None]:
            """As aiokafka's: the record is queued, the future is its delivery (here at once)."""
            sent.append((topic, value))
            delivered: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            delivered.set_result(None)
            return delivered

    account = world.account(Provider.GOOGLE_HEALTH, world.cohort.participant_ids[0])  # consented, not subscribed
    async with TestServer(build_simulator_app(world, CLIENTS, signer)) as sim, open_vault(settings) as vault:
        await vault.link("R" + "3" * 20, Provider.GOOGLE_HEALTH, account.user_id, TokenSet("a", "r", time.time() + 60))
        keysets = KeysetCache(str(sim.make_url(KEYSET_PATH)))
        gateway = build_gateway_app(settings, vault, Recorder(), keysets)
        async with TestServer(gateway) as server, aiohttp.ClientSession() as session:
            url = str(server.make_url("/webhooks/google_health"))
            delivery = WebhookDelivery(world, fitbit_url=None, google_url=url, fitbit_secret="s",
                                       fitbit_verify_code="c", google_token=DEMO_SECRETS["google_webhook_token"],
                                       signer=signer, interval_s=1)
            for _ in range(20):
                await delivery.round(session)
                if world.fully_synced():
                    break
            world.delete_samples(account, "steps", world.data_end - 7200, world.data_end - 3600)
            await delivery.round(session)
    assert delivery.verified[Provider.GOOGLE_HEALTH] and world.stats["webhooks_refused"] == 0
    fetches = [FetchRequest.from_bytes(v) for topic, v in sent if topic.endswith("fetch-requests")]
    assert sorted(f.data_type for f in fetches) == sorted(google_health_spec.DATA_TYPES)
    (deletion,) = [RawPage.from_bytes(v) for topic, v in sent if topic.endswith("raw.google_health")]
    assert deletion.data_type == "deletions" and orjson.loads(deletion.body)["dataType"] == "steps"
    assert world.stats["keyset_fetches"] == 1


class Flaky(Subscriber):
    """A subscriber that answers ``failures`` 503s (or the status given) before behaving."""

    def __init__(self, failures: int, status: int = 503) -> None:
        super().__init__()
        self.failures, self.status = failures, status

    async def on_fitbit(self, request: web.Request) -> web.Response:
        if self.failures > 0:
            self.failures -= 1
            return web.Response(status=self.status)
        return await super().on_fitbit(request)


async def _deliver(found: Subscriber, until: Callable[[World], object], seconds: float, *, copies: int = 1,
                   forged_share: float = 0.0) -> World:
    """Run a delivery of one Fitbit participant's syncs to ``found`` until ``until(world)`` or ``seconds`` pass."""
    world = World(SyntheticCohort(1, seed=5), days=2, late_share=1.0, duplicate_share=0.0)
    world.account(Provider.FITBIT, world.cohort.participant_ids[0]).subscribed = True
    async with TestServer(found.app()) as server:
        url = str(server.make_url("")).rstrip("/")
        delivery = WebhookDelivery(world, fitbit_url=f"{url}/webhooks/fitbit", google_url=None, fitbit_secret=SECRET,
                                   fitbit_verify_code=CODE, google_token=TOKEN, signer=SigningKey(),
                                   interval_s=0.05, copies=copies, forged_share=forged_share)
        stop = asyncio.Event()
        task = asyncio.ensure_future(delivery.run(stop))
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not until(world):
            await asyncio.sleep(0.05)
        stop.set()
        await asyncio.wait_for(task, 5)
    return world


async def test_an_unacknowledged_notification_is_sent_again_until_it_is() -> None:
    found = Flaky(failures=2)
    world = await _deliver(found, lambda w: w.stats["webhooks_acknowledged"], 10)
    assert world.stats["webhooks_refused"] == 2 and world.stats["webhooks_retried"] == 2
    assert world.stats["webhooks_acknowledged"] == 1 and len(found.fitbit) == 1  # the same body, in the end


async def test_a_refusal_that_is_final_is_not_retried() -> None:
    found = Flaky(failures=1, status=400)
    world = await _deliver(found, lambda w: w.stats["webhooks_refused"], 5)
    await asyncio.sleep(1.2)  # longer than the first backoff: a retry would have come
    assert world.stats["webhooks_retried"] == 0 and found.fitbit == []


async def test_copies_arrive_later_and_forgeries_are_refused() -> None:
    found = Subscriber()
    def done(w: World) -> bool:
        return w.stats["webhooks_acknowledged"] >= 4 and w.stats["webhooks_forged_refused"] > 0

    world = await _deliver(found, done, 10, copies=4, forged_share=0.25)
    assert world.stats["webhooks_acknowledged"] == 4  # the first and three copies, byte for byte the same
    assert len({orjson.dumps(body) for body in found.fitbit}) == 1
    assert world.stats["webhooks_forged_refused"] == 1 and world.stats["webhooks_forged_accepted"] == 0


async def test_no_device_syncs_while_the_vendor_is_down() -> None:
    found = Subscriber()
    world = World(SyntheticCohort(1, seed=5), days=2, late_share=1.0, duplicate_share=0.0)
    world.faults.down_until = time.monotonic() + 60
    async with TestServer(found.app()) as server:
        url = str(server.make_url("")).rstrip("/")
        delivery = WebhookDelivery(world, fitbit_url=f"{url}/webhooks/fitbit", google_url=None, fitbit_secret=SECRET,
                                   fitbit_verify_code=CODE, google_token=TOKEN, signer=SigningKey(), interval_s=0.02)
        world.account(Provider.FITBIT, world.cohort.participant_ids[0]).subscribed = True
        stop = asyncio.Event()
        task = asyncio.ensure_future(delivery.run(stop))
        await asyncio.sleep(0.3)
        assert found.fitbit == [] and not world.fully_synced()
        world.faults.down_until = 0.0
        for _ in range(100):
            if found.fitbit:
                break
            await asyncio.sleep(0.02)
        stop.set()
        await asyncio.wait_for(task, 5)
    assert len(found.fitbit) == 1
