"""The webhook receiver (served by ``wearables gateway``): vendor notifications → ``fetch-requests``.

Fitbit: ``GET ?verify=<code>`` answers 204 for our code and 404 for any other; a POST must
carry ``X-Fitbit-Signature`` = base64(HMAC-SHA1(body, client_secret + "&")) (``fitbit_spec.signature``)
or it gets 404 (as Fitbit's docs ask); the body is an array of ``{collectionType, date, ownerId, ...}``.
Google Health: every POST must carry our ``Authorization`` value (else 401); a verification
POST is answered 201; a notification names a user, a data type and an interval.

Everything is acknowledged within the vendors' deadline because nothing slow happens here:
one indexed vault lookup and a Kafka send per notification. Forged and malformed notifications
are answered 4xx, counted by reason, and publish nothing; so is a replayed Google notification.

A Fitbit body has no nonce or timestamp, so a byte-identical repeat is either a replay or a
device syncing the same day again, and nothing can tell them apart. Refusing it would lose the
re-sync's data when polls are rare; obeying it would let a captured body spend a participant's
rate limit. So a repeat within the window publishes nothing now (answered 204, which Fitbit wants,
and counted ``replayed``); the body's fetches are published once when its window closes, however
many repeats came — a re-sync is read, a replay costs at most one fetch per window.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from aiohttp import web
from aiokafka import AIOKafkaProducer

from connectors.vault import TokenVault
from connectors.vendors import fitbit_spec, google_health_spec
from models.fetch import FetchReason, FetchRequest
from models.providers import Provider
from runtime.metrics import counter, histogram

__all__ = ["WebhookReceiver"]

NOTIFICATIONS = counter("gateway_webhooks_total", "Webhook calls, by outcome", ["provider", "outcome"])
ACK_SECONDS = histogram("gateway_webhook_ack_seconds", "Time to answer a webhook call", ["provider"])
_REPLAY_MEMORY = 200_000
_FITBIT_COLLECTIONS = tuple(fitbit_spec.COLLECTIONS)
_Found = list[tuple[str, FetchRequest]]


class _Rejected(Exception):
    def __init__(self, status: int, outcome: str) -> None:
        super().__init__(outcome)
        self.status, self.outcome = status, outcome


@dataclass(slots=True)
class _Seen:
    at: float  # monotonic time the body was first accepted
    deferred: _Found | None = field(default=None)  # fetches owed when the window closes


class WebhookReceiver:
    """The gateway's webhook routes: vendor notifications in, fetch requests onto a topic.

    ::

        receiver = WebhookReceiver(vault, producer, fetch_topic=settings.topic("fetch-requests"),
                                   fitbit_secret=..., fitbit_verify_code=..., google_token=...)
        app.add_routes(receiver.routes())
        app.cleanup_ctx.append(receiver.deferred_publisher)  # repeats' fetches, at their window's end

    :param vault: finds the participant of a vendor user id.
    :param producer: sends the fetch requests.
    :param fetch_topic: the ``fetch-requests`` topic's full name.
    :param fitbit_secret: our Fitbit client secret, the key of ``X-Fitbit-Signature``.
    :param fitbit_verify_code: the subscriber verification code Fitbit's handshake presents.
    :param google_token: the ``Authorization`` value Google's notifications carry.
    :param repeat_window: seconds a body counts as a repeat (module docstring).
    """

    def __init__(self, vault: TokenVault, producer: AIOKafkaProducer, *, fetch_topic: str, fitbit_secret: str,
                 fitbit_verify_code: str, google_token: str, repeat_window: float = 300.0) -> None:
        self._vault, self._producer, self._topic = vault, producer, fetch_topic
        self._fitbit_secret = fitbit_secret
        self._verify_code, self._google_token = fitbit_verify_code, google_token
        self._window = repeat_window
        self._seen: OrderedDict[bytes, _Seen] = OrderedDict()
        self._owed: dict[bytes, _Seen] = {}  # entries with deferred fetches, until published

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/webhooks/fitbit", self.fitbit_verify), web.post("/webhooks/fitbit", self.fitbit),
                web.post("/webhooks/google_health", self.google)]

    async def deferred_publisher(self, _app: web.Application | None = None) -> AsyncIterator[None]:
        """An aiohttp cleanup context: publishes deferred fetches as their windows close, and
        every one still owed at shutdown (early is harmless; lost is not)."""
        task = asyncio.ensure_future(self._publish_due_forever())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await self._publish_due(float("inf"))

    async def _publish_due_forever(self) -> None:
        while True:
            await asyncio.sleep(min(1.0, self._window / 4))
            await self._publish_due(time.monotonic() - self._window)

    async def _publish_due(self, opened_before: float) -> None:
        due = [digest for digest, seen in self._owed.items() if seen.at <= opened_before]
        for digest in due:
            seen = self._owed.pop(digest)
            found, seen.deferred = seen.deferred or [], None
            await self._publish(found)
            NOTIFICATIONS.labels(Provider.FITBIT.value, "deferred_published").inc()

    # ------------------------------------------------------------------ Fitbit
    async def fitbit_verify(self, request: web.Request) -> web.Response:
        given = request.query.get(fitbit_spec.VERIFY_PARAMETER, "")
        good = hmac.compare_digest(given.encode(), self._verify_code.encode())
        NOTIFICATIONS.labels("fitbit", "verified" if good else "verify_refused").inc()
        return web.Response(status=204 if good else 404)

    async def fitbit(self, request: web.Request) -> web.Response:
        return await self._handle(Provider.FITBIT, request, self._fitbit_requests)

    async def _fitbit_requests(self, request: web.Request, body: bytes) -> _Found:
        expected = fitbit_spec.signature(body, self._fitbit_secret).encode()
        if not hmac.compare_digest(request.headers.get(fitbit_spec.SIGNATURE_HEADER, "").encode(), expected):
            raise _Rejected(404, "bad_signature")  # Fitbit: answer 404 to a notification that fails verification
        items = _json(body)
        if not isinstance(items, list) or not items:
            raise _Rejected(400, "malformed")
        found = []
        for item in items:
            if not isinstance(item, dict) or not isinstance(item.get("ownerId"), str) or not _is_date(item.get("date")):
                raise _Rejected(400, "malformed")
            collection = item.get("collectionType") or "activities"
            if collection not in _FITBIT_COLLECTIONS:
                continue  # body/foods/userRevokedAccess: not fetched by this connector
            rid = await self._vault.find_vendor_user(Provider.FITBIT, item["ownerId"])
            if rid is not None:
                found.append((rid, FetchRequest(Provider.FITBIT, collection, item["date"], item["date"],
                                                FetchReason.WEBHOOK, time.time())))
        return found

    # ------------------------------------------------------------------ Google Health
    async def google(self, request: web.Request) -> web.Response:
        return await self._handle(Provider.GOOGLE_HEALTH, request, self._google_requests)

    async def _google_requests(self, request: web.Request, body: bytes) -> _Found:
        if not hmac.compare_digest(request.headers.get("Authorization", "").encode(), self._google_token.encode()):
            raise _Rejected(401, "bad_authorization")
        data = _json(body)
        if isinstance(data, dict) and data.get("type") == "verification":
            raise _Rejected(201, "verified")  # not an error: the answer Google's verification expects
        if not isinstance(data, dict) or data.get("type") != "notification":
            raise _Rejected(400, "malformed")
        user, data_type, interval = data.get("user"), data.get("dataType"), data.get("interval")
        if not (isinstance(user, str) and user.startswith("users/") and data_type in google_health_spec.DATA_TYPES
                and isinstance(interval, dict)):
            raise _Rejected(400, "malformed")
        try:
            start = datetime.fromisoformat(str(interval["startTime"]).replace("Z", "+00:00")).astimezone(UTC)
            end = datetime.fromisoformat(str(interval["endTime"]).replace("Z", "+00:00")).astimezone(UTC)
        except (KeyError, ValueError):
            raise _Rejected(400, "malformed") from None
        if end < start or end - start > timedelta(days=400):
            raise _Rejected(400, "malformed")
        rid = await self._vault.find_vendor_user(Provider.GOOGLE_HEALTH, user.removeprefix("users/"))
        if rid is None:
            return []
        last = (end - timedelta(microseconds=1)).date()
        return [(rid, FetchRequest(Provider.GOOGLE_HEALTH, str(data_type), start.date().isoformat(),
                                   max(last, start.date()).isoformat(), FetchReason.WEBHOOK, time.time()))]

    # ------------------------------------------------------------------ shared
    async def _handle(self, provider: Provider, request: web.Request, parse: Any) -> web.Response:
        started = time.perf_counter()
        body = await request.read()
        try:
            found = await parse(request, body)
            if self._is_repeat(provider, body, found):
                raise _Rejected(204 if provider is Provider.FITBIT else 409, "replayed")
        except _Rejected as rejected:
            NOTIFICATIONS.labels(provider.value, rejected.outcome).inc()
            return web.Response(status=rejected.status)
        finally:
            ACK_SECONDS.labels(provider.value).observe(time.perf_counter() - started)
        await self._publish(found)
        NOTIFICATIONS.labels(provider.value, "accepted" if found else "unknown_user").inc()
        return web.Response(status=204)

    async def _publish(self, found: _Found) -> None:
        for rid, fetch in found:
            await self._producer.send(self._topic, fetch.to_bytes(), key=rid.encode())

    def _is_repeat(self, provider: Provider, body: bytes, found: _Found) -> bool:
        """Whether this verified body was seen within the window; a Fitbit repeat owes its
        fetches at the window's end (module docstring)."""
        now = time.monotonic()
        while self._seen and (len(self._seen) > _REPLAY_MEMORY
                              or next(iter(self._seen.values())).at < now - self._window):
            self._seen.popitem(last=False)  # an owed entry stays in _owed until it is published
        digest = hashlib.sha256(provider.value.encode() + b"\x00" + body).digest()
        seen = self._seen.get(digest)
        if seen is None:
            self._seen[digest] = _Seen(now)
            return False
        if provider is Provider.FITBIT and found and seen.deferred is None:
            seen.deferred = found
            self._owed[digest] = seen
        return True


def _json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise _Rejected(400, "malformed") from None


def _is_date(value: Any) -> bool:
    try:
        datetime.strptime(str(value), "%Y-%m-%d")
    except ValueError:
        return False
    return True
