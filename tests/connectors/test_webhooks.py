"""The webhook receiver: vendor handshakes, forged/malformed notifications refused and counted,
nothing published for them; good ones become fetch requests (Google deletions, raw pages).

Fitbit: a repeated body (replay or genuine re-sync: indistinguishable) is folded into one fetch
at the end of its window, or at shutdown. Google: signed notifications under either header
name, each answered 204, redeliveries too (published once); no keys, no verdict (503)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from aiokafka.errors import KafkaConnectionError
from prometheus_client import REGISTRY

from cli.topics import create_all_topics
from connectors.gateway import build_gateway_app
from connectors.oauth import TokenSet
from connectors.simulator.keyset_routes import SigningKey
from connectors.vault import TokenVault, open_vault
from connectors.vendors.endpoints import DEMO_SECRETS
from connectors.vendors.fitbit_spec import signature as fitbit_signature
from connectors.vendors.google_health_notifications import KEYSET_PATH, SIGNATURE_HEADERS, KeysetCache
from connectors.webhooks import WebhookReceiver
from models.fetch import FetchReason, FetchRequest
from models.providers import Provider
from models.raw import RawPage
from runtime.kafka import make_producer
from runtime.settings import Settings
from tests.conftest import wait_until
from tests.integration.test_normalize_agent import _drain

FITBIT_USER, GOOGLE_USER = "ABC123", "4242424242"
FITBIT_RID, GOOGLE_RID = "R" + "1" * 20, "R" + "2" * 20
SECRET = DEMO_SECRETS["google_webhook_token"]
TOKENS = TokenSet("a", "r", time.time() + 3600)
TODAY = date(2026, 11, 21)  # the receiver's today where notification()'s dates are recent


def _count(outcome: str, provider: str) -> float:
    return REGISTRY.get_sample_value("wearables_gateway_webhooks_total",
                                     {"provider": provider, "outcome": outcome}) or 0.0


def _google(*outcomes: str) -> dict[str, float]:
    return {outcome: _count(outcome, "google_health") for outcome in outcomes}


def _since(before: dict[str, float]) -> dict[str, float]:
    return {outcome: _count(outcome, "google_health") - value for outcome, value in before.items()}


def notification(operation: str = "UPSERT", data_type: str = "steps", user: str = GOOGLE_USER,
                 start: str = "2026-11-19T22:00:00Z", end: str = "2026-11-21T03:00:00Z") -> dict[str, Any]:
    """A documented notification: 22:00Z Nov 19 - 03:00Z Nov 21 is civil 17:00 Nov 19 - 22:00 Nov 20 (UTC-5)."""
    return {"data": {"version": "1", "healthUserId": user, "operation": operation, "dataType": data_type,
                     "intervals": [{"physicalTimeInterval": {"startTime": start, "endTime": end},
                                    "civilIso8601TimeInterval": {"startTime": "2026-11-19T17:00:00",
                                                                 "endTime": "2026-11-20T22:00:00"}}]}}


def signed(key: SigningKey, body: bytes, header: int = 0, *, authorization: bool = True) -> dict[str, str]:
    headers = {SIGNATURE_HEADERS[header]: key.sign(body)}
    if authorization:
        headers["Authorization"] = SECRET
    return headers


@dataclass
class KeyHost:
    """Google's keyset host, played by a test server: serves the key's keyset, or fails."""

    key: SigningKey = field(default_factory=SigningKey)
    status: int = 200
    url: str = ""

    async def serve(self, _: web.Request) -> web.Response:
        return web.Response(body=self.key.keyset_json(), status=self.status, content_type="application/json")


@pytest.fixture
async def keys() -> AsyncIterator[KeyHost]:
    host = KeyHost()
    app = web.Application()
    app.router.add_get(KEYSET_PATH, host.serve)
    async with TestServer(app) as server:
        host.url = str(server.make_url(KEYSET_PATH))
        yield host


# ---------------------------------------------------------------------- through the gateway app, real broker
@contextlib.asynccontextmanager
async def _gateway(settings: Settings, research_id: str, provider: Provider, vendor_user: str
                   ) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    """The gateway app on a real producer, with one participant linked; flushed when done."""
    await create_all_topics(settings)
    producer = make_producer(settings)
    await producer.start()
    try:
        async with open_vault(settings) as vault:
            await vault.link(research_id, provider, vendor_user, TOKENS)
            async with TestClient(TestServer(build_gateway_app(settings, vault, producer))) as http:
                yield http
            await producer.flush()
    finally:
        await producer.stop()


@pytest.mark.integration
async def test_fitbit_webhooks_verify_refuse_and_publish(settings_factory: Callable[..., Settings]) -> None:
    settings = settings_factory(webhook_repeat_window=0.5)
    before = {o: _count(o, "fitbit") for o in ("bad_signature", "malformed", "replayed", "deferred_published")}
    async with _gateway(settings, FITBIT_RID, Provider.FITBIT, FITBIT_USER) as http:
        await _fitbit_cases(http)

    published = [FetchRequest.from_bytes(v) for v in await _drain(settings, "fetch-requests",
                                                                    until=lambda vs: len(vs) >= 4, timeout=5)]
    assert sorted((r.provider, r.data_type, r.start_date, r.end_date, r.reason) for r in published) == [
        # each Fitbit body: once when accepted, once more for its repeats (timer, then shutdown)
        (Provider.FITBIT, "activities", "2026-11-20", "2026-11-20", FetchReason.WEBHOOK),
        (Provider.FITBIT, "activities", "2026-11-20", "2026-11-20", FetchReason.WEBHOOK),
        (Provider.FITBIT, "activities", "2026-11-21", "2026-11-21", FetchReason.WEBHOOK),
        (Provider.FITBIT, "activities", "2026-11-21", "2026-11-21", FetchReason.WEBHOOK),
    ]
    counted = {key: _count(key, "fitbit") - value for key, value in before.items()}
    assert counted == {"bad_signature": 2, "malformed": 4, "replayed": 3, "deferred_published": 2}


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
    signed_later = {"X-Fitbit-Signature": fitbit_signature(later, secret)}
    assert (await http.post("/webhooks/fitbit", data=later, headers=signed_later)).status == 204
    assert (await http.post("/webhooks/fitbit", data=later, headers=signed_later)).status == 204


@pytest.mark.integration
async def test_google_notifications_through_the_gateway_reach_the_broker(
        settings_factory: Callable[..., Settings], keys: KeyHost) -> None:
    # the longest backfill window: notification()'s dates stay inside it for years
    settings = settings_factory(google_keyset_url=keys.url, backfill_days=3650)
    before = _google("verified", "verify_refused", "accepted", "deleted")
    async with _gateway(settings, GOOGLE_RID, Provider.GOOGLE_HEALTH, GOOGLE_USER) as http:
        verification = b'{"type": "verification"}'
        assert (await http.post("/webhooks/google_health", data=verification,
                                headers={"Authorization": SECRET})).status == 201
        assert (await http.post("/webhooks/google_health", data=verification)).status == 401
        steps = orjson.dumps([notification()])
        sleep = orjson.dumps([notification(data_type="sleep")])
        deletion = orjson.dumps([notification("DELETE", "weight")])  # a type we do not fetch, still sent
        for n, body in enumerate((steps, sleep, deletion)):  # both header names
            headers = signed(keys.key, body, n % 2)
            answer = await http.post("/webhooks/google_health", data=body, headers=headers)
            assert answer.status == 204

    fetches = [FetchRequest.from_bytes(v) for v in await _drain(settings, "fetch-requests",
                                                                  until=lambda vs: len(vs) >= 2, timeout=5)]
    # UTC dates of the physical interval (Nov 19-21) and civil dates (Nov 19-20), together
    assert sorted((r.provider, r.data_type, r.start_date, r.end_date, r.reason) for r in fetches) == [
        (Provider.GOOGLE_HEALTH, "sleep", "2026-11-19", "2026-11-21", FetchReason.WEBHOOK),
        (Provider.GOOGLE_HEALTH, "steps", "2026-11-19", "2026-11-21", FetchReason.WEBHOOK),
    ]
    pages = [RawPage.from_bytes(v) for v in await _drain(settings, "raw.google_health",
                                                           until=lambda vs: len(vs) >= 1, timeout=5)]
    assert [(p.provider, p.data_type, p.date, p.origin) for p in pages] == [
        (Provider.GOOGLE_HEALTH, "deletions", None, "webhook")]
    assert pages[0].body == DELETION_BODY_WEIGHT
    assert GOOGLE_USER.encode() not in pages[0].to_bytes()  # no vendor user id in what we write
    assert _since(before) == {"verified": 1, "verify_refused": 1, "accepted": 2, "deleted": 1}


DELETION_BODY_WEIGHT = (b'{"operation":"DELETE","dataType":"weight","intervals":[{"physicalTimeInterval":'
                        b'{"startTime":"2026-11-19T22:00:00Z","endTime":"2026-11-21T03:00:00Z"},'
                        b'"civilIso8601TimeInterval":{"startTime":"2026-11-19T17:00:00",'
                        b'"endTime":"2026-11-20T22:00:00"}}]}')


# ---------------------------------------------------------------------- the receiver alone, a recording producer
@dataclass
class Recorder:
    """Stands in for the Kafka producer: keeps what was sent, each acknowledged at once (or, while
    ``down``, failed as a producer without its broker fails it)."""

    sent: list[tuple[str, bytes, bytes | None]] = field(default_factory=list)
    down: bool = False

    async def send(self, topic: str, value: bytes, key: bytes | None = None) -> asyncio.Future[None]:
        acknowledged: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.down:
            acknowledged.set_exception(KafkaConnectionError("no broker"))
        else:
            self.sent.append((topic, value, key))
            acknowledged.set_result(None)
        return acknowledged

    def on(self, topic: str) -> list[bytes]:
        return [value for to, value, _ in self.sent if to == topic]


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Rig:
    http: TestClient  # type: ignore[type-arg]
    sent: Recorder
    keys: KeyHost
    keyset_clock: Clock
    clock: Clock
    cache: KeysetCache

    async def post(self, body: bytes, headers: dict[str, str] | None = None) -> int:
        answer = await self.http.post("/webhooks/google_health", data=body, headers=headers or {})
        return answer.status

    async def notify(self, *items: dict[str, Any], header: int = 0) -> int:
        body = orjson.dumps(list(items))
        return await self.post(body, signed(self.keys.key, body, header))

    async def fitbit(self, body: bytes) -> int:
        """A Fitbit notification signed with the rig's client secret ("f")."""
        answer = await self.http.post("/webhooks/fitbit", data=body,
                                      headers={"X-Fitbit-Signature": fitbit_signature(body, "f")})
        return answer.status


@pytest.fixture
async def vault(tmp_path: Path) -> AsyncIterator[TokenVault]:
    settings = Settings.model_validate({"env": "demo", "data_dir": tmp_path})
    async with open_vault(settings) as found:
        await found.link(GOOGLE_RID, Provider.GOOGLE_HEALTH, GOOGLE_USER, TOKENS)
        await found.link(FITBIT_RID, Provider.FITBIT, FITBIT_USER, TOKENS)
        yield found


@pytest.fixture
async def rig(vault: TokenVault, keys: KeyHost) -> AsyncIterator[Rig]:
    keyset_clock, clock, sent = Clock(), Clock(), Recorder()
    cache = KeysetCache(keys.url, clock=keyset_clock)
    receiver = WebhookReceiver(vault, sent, fetch_topic="fetch", raw_topic="raw",  # type: ignore[arg-type]
                               fitbit_secret="f", fitbit_verify_code="v", google_token=SECRET, keysets=cache,
                               repeat_window=300, clock=clock, today=lambda: TODAY)
    app = web.Application()
    app.add_routes(receiver.routes())
    app.cleanup_ctx.append(receiver.deferred_publisher)
    async with TestClient(TestServer(app)) as http:
        yield Rig(http, sent, keys, keyset_clock, clock, cache)
    await cache.aclose()


async def test_forged_missing_and_unauthorized_calls_publish_nothing(rig: Rig) -> None:
    before = _google("bad_authorization", "missing_signature", "bad_signature", "verify_refused")
    body = orjson.dumps([notification()])
    assert await rig.post(body, {"Authorization": SECRET}) == 401  # no signature
    assert await rig.post(body, signed(SigningKey(), body)) == 403  # another key: forged
    assert await rig.post(body, signed(rig.keys.key, orjson.dumps([notification(user="someone")]))) == 403
    assert await rig.post(body, {SIGNATURE_HEADERS[1]: "bm90IGEgc2lnbmF0dXJl"}) == 403
    assert await rig.post(body, {**signed(rig.keys.key, body), "Authorization": "Bearer wrong"}) == 401
    assert await rig.post(b'{"type": "verification"}', {"Authorization": "Bearer wrong"}) == 401
    assert rig.sent.sent == []
    assert _since(before) == {"bad_authorization": 1, "missing_signature": 1, "bad_signature": 3,
                              "verify_refused": 1}


async def test_a_signature_alone_is_enough(rig: Rig) -> None:
    body = orjson.dumps([notification()])
    assert await rig.post(body, signed(rig.keys.key, body, 1, authorization=False)) == 204
    (fetch,) = [FetchRequest.from_bytes(v) for v in rig.sent.on("fetch")]
    assert (fetch.data_type, fetch.start_date, fetch.end_date) == ("steps", "2026-11-19", "2026-11-21")
    assert rig.sent.sent[0][2] == GOOGLE_RID.encode()  # keyed by research_id


async def test_five_deliveries_of_one_notification_make_one_fetch(rig: Rig) -> None:
    before = _google("accepted", "redelivered")
    for header in range(5):
        assert await rig.notify(notification(), header=header % 2) == 204
    assert len(rig.sent.on("fetch")) == 1
    rig.clock.now += 301  # past the window it is news again
    assert await rig.notify(notification()) == 204
    assert len(rig.sent.on("fetch")) == 2
    assert _since(before) == {"accepted": 2, "redelivered": 4}


async def test_delete_publishes_one_deletions_page_and_no_fetch(rig: Rig) -> None:
    assert await rig.notify(notification("DELETE", "steps")) == 204
    assert await rig.notify(notification("DELETE", "steps")) == 204  # redelivered
    assert rig.sent.on("fetch") == []
    (raw,) = rig.sent.on("raw")
    page = RawPage.from_bytes(raw)
    assert (page.provider, page.data_type, page.date, page.origin) == (Provider.GOOGLE_HEALTH, "deletions", None,
                                                                       "webhook")
    assert page.body == DELETION_BODY_WEIGHT.replace(b'"weight"', b'"steps"')
    assert page.request_id and abs(page.fetched_at - time.time()) < 60
    # deleted, restored, deleted again: three changes, not redeliveries
    assert await rig.notify(notification("UPSERT", "steps")) == 204
    assert await rig.notify(notification("DELETE", "steps")) == 204
    assert (len(rig.sent.on("raw")), len(rig.sent.on("fetch"))) == (2, 1)


async def test_deletion_body_parts_follow_the_notification(rig: Rig) -> None:
    physical_only = notification("DELETE", "heart-rate")
    del physical_only["data"]["intervals"][0]["civilIso8601TimeInterval"]
    civil_parts = {"data": {"healthUserId": GOOGLE_USER, "operation": "DELETE", "dataType": "sleep",
                            "civilDateTimeInterval": {  # the older shape, civil time as parts
                                "startDateTime": {"date": {"year": 2026, "month": 11, "day": 19},
                                                  "time": {"hours": 23, "minutes": 5, "seconds": 9,
                                                           "nanos": 999_000_000}},
                                "endDateTime": {"date": {"year": 2026, "month": 11, "day": 20},
                                                "time": {"hours": 6}}}}}
    assert await rig.notify(physical_only, civil_parts) == 204
    assert [RawPage.from_bytes(v).body for v in rig.sent.on("raw")] == [
        b'{"operation":"DELETE","dataType":"heart-rate","intervals":[{"physicalTimeInterval":'
        b'{"startTime":"2026-11-19T22:00:00Z","endTime":"2026-11-21T03:00:00Z"}}]}',
        b'{"operation":"DELETE","dataType":"sleep","intervals":[{"civilIso8601TimeInterval":'
        b'{"startTime":"2026-11-19T23:05:09","endTime":"2026-11-20T06:00:00"}}]}',
    ]


async def test_unfetched_types_unknown_users_and_malformed_bodies(rig: Rig) -> None:
    before = _google("ignored_data_type", "unknown_user", "malformed", "accepted")
    assert await rig.notify(notification(data_type="weight"), notification(user="999")) == 204
    assert rig.sent.sent == []
    for bad in (b"not json", b"[]", orjson.dumps({"type": "notification", "user": f"users/{GOOGLE_USER}"}),
                orjson.dumps([notification(start="yesterday")])):
        assert await rig.post(bad, signed(rig.keys.key, bad)) == 400
    assert rig.sent.sent == []
    assert _since(before) == {"ignored_data_type": 1, "unknown_user": 1, "malformed": 4, "accepted": 0}


async def test_a_failing_keyset_host_is_outlived_for_seven_days(rig: Rig) -> None:
    fetch_failures = REGISTRY.get_sample_value("wearables_gateway_google_keyset_fetches_total",
                                               {"outcome": "http_error"}) or 0.0
    before = _google("no_keys", "accepted")
    assert await rig.notify(notification()) == 204  # first use: keys fetched
    rig.keys.status = 500
    rig.keyset_clock.now += 2 * 86400  # the daily refresh fails: the cached keys still verify
    assert await rig.notify(notification(data_type="sleep")) == 204
    await rig.cache.idle()
    assert REGISTRY.get_sample_value("wearables_gateway_google_keyset_fetches_total",
                                     {"outcome": "http_error"}) == fetch_failures + 1
    assert len(rig.sent.on("fetch")) == 2
    rig.keyset_clock.now += 6 * 86400  # 8 days since the last good fetch: no keys, no verdict
    assert await rig.notify(notification(data_type="heart-rate")) == 503
    assert len(rig.sent.on("fetch")) == 2
    assert _since(before) == {"no_keys": 1, "accepted": 2}
    rig.keys.status = 200
    rig.keyset_clock.now += 60  # the host is back, and the next try is due
    assert await rig.notify(notification(data_type="heart-rate")) == 204  # Google's retry succeeds


async def test_never_fetched_keys_answer_503(vault: TokenVault) -> None:
    before = _google("no_keys")
    cache = KeysetCache("http://127.0.0.1:9" + KEYSET_PATH, timeout_s=2)  # nothing listens there
    receiver = WebhookReceiver(vault, Recorder(), fetch_topic="f", raw_topic="r",  # type: ignore[arg-type]
                               fitbit_secret="f", fitbit_verify_code="v", google_token=SECRET, keysets=cache)
    app = web.Application()
    app.add_routes(receiver.routes())
    body = orjson.dumps([notification()])
    async with TestClient(TestServer(app)) as http:
        answer = await http.post("/webhooks/google_health", data=body, headers=signed(SigningKey(), body))
        assert answer.status == 503
        verification = await http.post("/webhooks/google_health", data=b'{"type": "verification"}',
                                       headers={"Authorization": SECRET})
        assert verification.status == 201  # the handshake needs no keys
    await cache.aclose()
    assert _since(before) == {"no_keys": 1}


async def test_a_rotated_key_is_fetched_when_a_signature_names_it(rig: Rig) -> None:
    assert await rig.notify(notification()) == 204
    rig.keys.key = SigningKey()  # the host now serves only a new key
    rig.keyset_clock.now += 60
    assert await rig.notify(notification(data_type="sleep")) == 204  # unknown key id → refetched, verified
    assert len(rig.sent.on("fetch")) == 2


async def test_a_readable_notification_beside_an_unreadable_one_is_acted_on(rig: Rig) -> None:
    before = _google("malformed", "accepted")
    broken = notification(data_type="sleep")
    broken["data"]["operation"] = "PATCH"
    assert await rig.notify(notification(), broken) == 204  # else Google would drop both after 7 days
    fetches = [FetchRequest.from_bytes(value) for value in rig.sent.on("fetch")]
    assert [(f.data_type, f.start_date, f.end_date) for f in fetches] == [("steps", "2026-11-19", "2026-11-21")]
    assert _since(before) == {"malformed": 1, "accepted": 1}


async def test_a_deletion_end_with_a_fraction_of_a_second_rounds_up(rig: Rig) -> None:
    deletion = notification("DELETE", start="2026-11-20T10:00:00.400Z", end="2026-11-20T10:00:59.999Z")
    assert await rig.notify(deletion) == 204
    (page,) = [RawPage.from_bytes(value) for value in rig.sent.on("raw")]
    interval = orjson.loads(page.body)["intervals"][0]["physicalTimeInterval"]
    assert interval == {"startTime": "2026-11-20T10:00:00Z", "endTime": "2026-11-20T10:01:00Z"}  # :59 is inside


# ---------------------------------------------------------------------- Kafka does not acknowledge (audit finding 8)
def fitbit_body(*items: dict[str, Any]) -> bytes:
    return orjson.dumps(list(items) or [{"collectionType": "activities", "date": "2026-11-20",
                                         "ownerId": FITBIT_USER, "ownerType": "user", "subscriptionId": "s1"}])


def _fitbit(*outcomes: str) -> dict[str, float]:
    return {outcome: _count(outcome, "fitbit") for outcome in outcomes}


def _fitbit_since(before: dict[str, float]) -> dict[str, float]:
    return {outcome: _count(outcome, "fitbit") - value for outcome, value in before.items()}


async def test_a_notification_kafka_does_not_take_is_answered_503_and_its_retry_is_news(rig: Rig) -> None:
    fitbit, google = _fitbit("publish_failed", "accepted", "replayed"), _google("publish_failed", "accepted",
                                                                                 "redelivered")
    rig.sent.down = True
    assert await rig.fitbit(fitbit_body()) == 503  # not 204: the vendor is to send it again
    assert await rig.notify(notification()) == 503
    rig.sent.down = False
    assert await rig.fitbit(fitbit_body()) == 204  # Fitbit's retry: published, not folded as a repeat
    assert await rig.notify(notification()) == 204  # Google's retry: published, not a redelivery
    fetches = [FetchRequest.from_bytes(value) for value in rig.sent.on("fetch")]
    assert sorted((f.provider, f.start_date) for f in fetches) == [(Provider.FITBIT, "2026-11-20"),
                                                                   (Provider.GOOGLE_HEALTH, "2026-11-19")]
    assert _fitbit_since(fitbit) == {"publish_failed": 1, "accepted": 1, "replayed": 0}
    assert _since(google) == {"publish_failed": 1, "accepted": 1, "redelivered": 0}


async def test_a_deferred_fetch_kafka_does_not_take_is_tried_again(rig: Rig) -> None:
    before = _fitbit("publish_failed", "deferred_published", "replayed")
    assert await rig.fitbit(fitbit_body()) == 204
    assert await rig.fitbit(fitbit_body()) == 204  # a repeat: owes one fetch at the window's end
    rig.sent.down = True
    rig.clock.now += 301  # the window closes while Kafka is down
    await wait_until(lambda: _count("publish_failed", "fitbit") > before["publish_failed"], 10,
                     "the deferred publish to fail", every=0.1)
    assert len(rig.sent.on("fetch")) == 1
    rig.sent.down = False
    await wait_until(lambda: _count("deferred_published", "fitbit") > before["deferred_published"], 10,
                     "the deferred fetch to be published on a later round", every=0.1)
    assert len(rig.sent.on("fetch")) == 2
    assert _fitbit_since(before)["replayed"] == 1


# ---------------------------------------------------------------------- odd but signed input (audit 16, 22, 15)
async def test_a_signed_fitbit_batch_with_malformed_items_publishes_the_good_ones(rig: Rig) -> None:
    before = _fitbit("malformed", "accepted")
    good = {"collectionType": "sleep", "date": "2026-11-20", "ownerId": FITBIT_USER}
    body = fitbit_body(good, {"ownerId": FITBIT_USER, "date": "2026-1-5"}, {"date": "2026-11-20"}, "no object")
    assert await rig.fitbit(body) == 204
    (fetch,) = [FetchRequest.from_bytes(value) for value in rig.sent.on("fetch")]
    assert (fetch.provider, fetch.data_type, fetch.start_date, fetch.end_date) == (Provider.FITBIT, "sleep",
                                                                                    "2026-11-20", "2026-11-20")
    assert _fitbit_since(before) == {"malformed": 3, "accepted": 1}


async def test_fitbit_dates_are_exactly_iso_and_in_bounded_years(rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    before = _fitbit("malformed")
    for day in ("2026-1-5", "20261120", "0001-01-01", "9999-12-31", "2026-02-30", 20261120):
        item = {"collectionType": "activities", "date": day, "ownerId": FITBIT_USER}
        assert await rig.fitbit(fitbit_body(item)) == 400, day
    assert rig.sent.sent == []
    assert _fitbit_since(before) == {"malformed": 6}
    assert not [record for record in caplog.records if record.exc_info], "a traceback was logged"


def _civil_only(start: str, end: str, operation: str = "UPSERT") -> dict[str, Any]:
    item = notification(operation)
    item["data"]["intervals"] = [{"civilIso8601TimeInterval": {"startTime": start, "endTime": end}}]
    return item


async def test_google_dates_at_the_calendars_edges_are_malformed(rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    before = _google("malformed")
    for item in (_civil_only("0001-01-01T00:00:00", "0001-01-01T06:00:00"),  # a day before it: overflow
                 _civil_only("9999-12-31T00:00:00", "9999-12-31T23:59:59"),
                 notification("DELETE", start="9999-12-31T23:59:58Z", end="9999-12-31T23:59:59.500Z"),
                 notification(start="1999-12-31T00:00:00Z", end="2000-01-01T00:00:00Z")):
        assert await rig.notify(item) == 400
    assert rig.sent.sent == []
    assert _since(before) == {"malformed": 4}
    assert not [record for record in caplog.records if record.exc_info], "a traceback was logged"


async def _raw_post(rig: Rig, path: str, headers: bytes, body: bytes) -> int:
    """A POST with header bytes as given (aiohttp's client would not send non-UTF-8 ones); its status."""
    reader, writer = await asyncio.open_connection(rig.http.host, rig.http.port)
    try:
        writer.write(b"POST " + path.encode() + b" HTTP/1.1\r\nHost: gateway\r\nConnection: close\r\n" + headers
                     + b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 10)
        return int(status_line.split()[1])
    finally:
        writer.close()


async def test_non_utf8_signature_and_authorization_headers_are_refused_not_500(
        rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    before = _google("bad_authorization", "bad_signature") | {"fitbit": _count("bad_signature", "fitbit")}
    body = orjson.dumps([notification()])
    assert await _raw_post(rig, "/webhooks/fitbit", b"X-Fitbit-Signature: \xff\xfe=\r\n", fitbit_body()) == 404
    assert await _raw_post(rig, "/webhooks/google_health", b"Authorization: Bearer \xff\r\n", body) == 401
    bad_signature = SIGNATURE_HEADERS[0].encode() + b": \xc3\x28sig\r\n"
    assert await _raw_post(rig, "/webhooks/google_health", bad_signature, body) == 403
    verification = b'{"type": "verification"}'
    assert await _raw_post(rig, "/webhooks/google_health", b"Authorization: \xff\r\n", verification) == 401
    assert rig.sent.sent == []
    counted = _since({k: v for k, v in before.items() if k != "fitbit"})
    assert counted == {"bad_authorization": 1, "bad_signature": 1}
    assert _count("bad_signature", "fitbit") == before["fitbit"] + 1
    assert not [record for record in caplog.records if record.exc_info], "a traceback was logged"


async def test_a_google_fetch_is_clamped_to_the_backfill_window_and_a_week(rig: Rig) -> None:
    before = _google("accepted", "clamped", "out_of_range")
    long_ago = notification(start="2025-10-25T00:00:00Z", end="2026-11-21T03:00:00Z")  # 392 days, TODAY = Nov 21
    assert await rig.notify(long_ago) == 204
    (fetch,) = [FetchRequest.from_bytes(value) for value in rig.sent.on("fetch")]
    assert (fetch.start_date, fetch.end_date) == ("2026-11-14", "2026-11-21")  # the last 8 dates, not 393
    future = notification(data_type="sleep", start="2026-11-20T00:00:00Z", end="2027-06-01T00:00:00Z")
    assert await rig.notify(future) == 204
    fetch = FetchRequest.from_bytes(rig.sent.on("fetch")[-1])
    assert (fetch.start_date, fetch.end_date) == ("2026-11-19", "2026-11-22")  # through tomorrow
    for outside in (_civil_only("2026-01-01T00:00:00", "2026-01-02T00:00:00"),  # before the backfill window
                    notification(data_type="heart-rate", start="2027-01-01T00:00:00Z", end="2027-01-02T00:00:00Z")):
        if "physicalTimeInterval" in outside["data"]["intervals"][0]:
            del outside["data"]["intervals"][0]["civilIso8601TimeInterval"]
        assert await rig.notify(outside) == 204  # not broken, nothing to fetch: Google is not to retry
    assert len(rig.sent.on("fetch")) == 2
    assert _since(before) == {"accepted": 2, "clamped": 2, "out_of_range": 2}


async def test_a_redelivery_is_known_by_what_it_says_not_by_its_bytes(rig: Rig) -> None:
    before = _google("accepted", "redelivered")
    assert await rig.notify(notification()) == 204
    respaced = orjson.dumps([notification(start="2026-11-19T22:00:00+00:00")], option=orjson.OPT_INDENT_2)
    assert await rig.post(respaced, signed(rig.keys.key, respaced)) == 204
    assert len(rig.sent.on("fetch")) == 1
    assert _since(before) == {"accepted": 1, "redelivered": 1}
