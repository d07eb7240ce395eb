"""The webhook receiver (served by ``wearables gateway``): vendor notifications → ``fetch-requests``
(and, for Google Health deletions, ``raw.google_health``).

Fitbit: ``GET ?verify=<code>`` answers 204 for our code and 404 for any other; a POST must
carry ``X-Fitbit-Signature`` = base64(HMAC-SHA1(body, client_secret + "&")) (``fitbit_spec.signature``)
or it gets 404 (as Fitbit's docs ask); the body is an array of ``{collectionType, date, ownerId, ...}``.

Google Health (the wire format: ``vendors/google_health_notifications.py``):

- the subscriber handshake, ``{"type": "verification"}``, is answered 201 when ``Authorization``
  is exactly our secret and 401 without it or with another value (Google checks both);
- a notification is refused 401 when it carries an ``Authorization`` other than our secret
  (one user reports events without the header, so its absence is no reason to refuse), 401
  without a signature, 403 with one that does not verify under Google's keyset, 503 while the
  gateway has no usable keyset (never fetched, or older than 7 days: Google retries anything but
  204, so "try later" is the honest answer), 400 when the body cannot be read;
- every accepted body is answered **204** once Kafka acknowledged what it asked for, as Google
  asks (within its deadline: the wait is bounded). Delivery is at-least-once, so
  a notification whose (user, data type, interval) was last seen with the same operation within
  the repeat window is a redelivery: answered 204, counted ``redelivered``, nothing published.
  Refusing it with a 4xx would only make Google send it again for days. Keying on the last
  operation keeps DELETE, UPSERT, DELETE of one interval three real changes;
- UPSERT of a data type our client fetches (``google_health_spec.DATA_TYPES``) becomes one fetch
  request whose dates cover the UTC dates of the physical interval and the civil dates (steps and
  heart rate are fetched by UTC day, sleep and daily types by civil date); other types are
  counted ``ignored_data_type``;
- DELETE (of any data type) becomes one ``RawPage(provider=google_health, data_type="deletions",
  date=None, origin="webhook")`` on ``raw.google_health``, keyed by research_id, whose body is
  exactly ``{"operation": "DELETE", "dataType": <type>, "intervals": [{"physicalTimeInterval":
  {"startTime": "YYYY-MM-DDTHH:MM:SSZ", "endTime": ...}, "civilIso8601TimeInterval":
  {"startTime": "YYYY-MM-DDTHH:MM:SS", "endTime": ...}}]}`` (orjson, keys in this order, each
  interval part present only when the notification had it, whole seconds). The vendor's user
  id is not in it: nothing we write holds one. The deletions normalizer reads exactly this.

Google outcomes (``gateway_webhooks_total{provider="google_health"}``): per call ``verified``,
``verify_refused``, ``bad_authorization``, ``missing_signature``, ``bad_signature``, ``no_keys``,
``malformed``; per accepted notification ``accepted``, ``deleted``, ``redelivered``,
``ignored_data_type``, ``unknown_user``, ``out_of_range`` (and ``clamped``).

Both vendors, per call: ``too_large`` (413, over the app's body limit), ``body_timeout`` (408,
the body did not arrive within ``body_timeout`` seconds: a trickling client holds no connection),
``publish_failed`` (503). Dates are ``YYYY-MM-DD`` exactly (``date.fromisoformat`` and back) in the
years ``_YEARS``; anything else is ``malformed``, never a 500.

**Nothing is acknowledged before Kafka has it.** A notification's records are sent and their
delivery awaited, bounded by ``publish_timeout`` (3 s: inside Fitbit's 5 s); when Kafka does not
acknowledge them in time the call is answered **503**, counted ``publish_failed``, and nothing of
it is remembered, so the vendor's retry is treated as new (a Fitbit body is not "seen", a Google
notification not "delivered"). A send that timed out may still reach Kafka later: at-least-once,
and the fetch is idempotent. Otherwise everything is quick: one indexed vault lookup and a Kafka
round trip per notification (the keyset is refreshed in the background; only a gateway with no
keys at all fetches them while a call waits). Refused notifications are counted by reason and
publish nothing.

A Fitbit body has no nonce or timestamp, so a byte-identical repeat is either a replay or a
device syncing the same day again, and nothing can tell them apart. Refusing it would lose the
re-sync's data when polls are rare; obeying it would let a captured body spend a participant's
rate limit. So a repeat within the window publishes nothing now (answered 204, which Fitbit wants,
and counted ``replayed``); the body's fetches are published once when its window closes, however
many repeats came — a re-sync is read, a replay costs at most one fetch per window. Deferred
fetches Kafka does not acknowledge stay owed and are tried again each second (counted
``publish_failed``); those still owed when the gateway stops are logged as lost. A signed batch
with malformed items (no ``ownerId``, a bad date) publishes its good items, answered 204, and
counts each bad one ``malformed``; a batch with no good item is refused 400.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
from aiohttp import web
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from connectors.vault import TokenVault
from connectors.vendors import fitbit_spec, google_health_spec
from connectors.vendors.google_health_notifications import (
    Interval,
    KeysetCache,
    Notification,
    Verdict,
    is_verification,
    read_notifications,
    signature_values,
    verify_signature,
)
from models.errors import DecodeError
from models.fetch import FetchReason, FetchRequest
from models.providers import Provider
from models.raw import RawPage
from runtime.metrics import counter, histogram

__all__ = ["MAX_WEBHOOK_DAYS", "WebhookReceiver", "deletion_body"]

logger = logging.getLogger(__name__)
# per-call outcomes of both vendors, exported at 0 so that an alert on them can be checked
_CALL_OUTCOMES = ("publish_failed", "too_large", "body_timeout", "malformed")
NOTIFICATIONS = counter("gateway_webhooks_total", "Webhook calls (refused ones) and notifications, by outcome",
                        ["provider", "outcome"],
                        initial=[(provider.value, outcome) for provider in (Provider.FITBIT, Provider.GOOGLE_HEALTH)
                                 for outcome in _CALL_OUTCOMES])
ACK_SECONDS = histogram("gateway_webhook_ack_seconds", "Time to answer a webhook call", ["provider"])
_REPLAY_MEMORY = 200_000
_FITBIT_COLLECTIONS = tuple(fitbit_spec.COLLECTIONS)
_GOOGLE = Provider.GOOGLE_HEALTH
_YEARS = range(2000, 2101)  # a date outside these is a broken body (and keeps date arithmetic off the edges)
#: A Google fetch covers at most the last date of its (clamped) interval and this many days before it.
MAX_WEBHOOK_DAYS = 7
_Found = list[tuple[str, FetchRequest]]
_Record = tuple[str, bytes, bytes]  # topic, value, key


def _utc_today() -> date:
    return datetime.now(UTC).date()


class _Rejected(Exception):
    def __init__(self, status: int, outcome: str) -> None:
        super().__init__(outcome)
        self.status, self.outcome = status, outcome


def _not_published() -> _Rejected:
    return _Rejected(503, "publish_failed")  # Kafka did not acknowledge: the vendor is to retry


@dataclass(slots=True)
class _Seen:
    at: float  # monotonic time the body was first accepted
    deferred: _Found | None = field(default=None)  # fetches owed when the window closes


class WebhookReceiver:
    """The gateway's webhook routes: vendor notifications in, fetch requests (and Google
    deletions) onto topics.

    ::

        receiver = WebhookReceiver(vault, producer, fetch_topic=settings.topic("fetch-requests"),
                                   raw_topic=settings.topic("raw.google_health"), fitbit_secret=...,
                                   fitbit_verify_code=..., google_token=..., keysets=KeysetCache(url))
        app.add_routes(receiver.routes())
        app.cleanup_ctx.append(receiver.deferred_publisher)  # repeats' fetches, at their window's end

    :param vault: finds the participant of a vendor user id.
    :param producer: sends the fetch requests and deletion pages.
    :param fetch_topic: the ``fetch-requests`` topic's full name.
    :param raw_topic: the ``raw.google_health`` topic's full name (DELETE notifications).
    :param fitbit_secret: our Fitbit client secret, the key of ``X-Fitbit-Signature``.
    :param fitbit_verify_code: the subscriber verification code Fitbit's handshake presents.
    :param google_token: our Google subscriber secret, the ``Authorization`` value Google sends.
    :param keysets: Google's public keyset, which verifies notification signatures.
    :param repeat_window: seconds a Fitbit body counts as a repeat, and a Google notification as
        a redelivery (module docstring).
    :param backfill_days: how far back a Google notification's fetch may reach (the scheduler's
        ``backfill_days``).
    :param publish_timeout: seconds to wait for Kafka's acknowledgement before answering 503.
    :param body_timeout: seconds a request body may take to arrive before it is answered 408.
    :param clock: monotonic seconds, for the windows (injectable for tests).
    :param today: today's UTC date, for the Google clamp (injectable for tests).
    """

    def __init__(self, vault: TokenVault, producer: AIOKafkaProducer, *, fetch_topic: str, raw_topic: str,
                 fitbit_secret: str, fitbit_verify_code: str, google_token: str, keysets: KeysetCache,
                 repeat_window: float = 300.0, backfill_days: int = 30, publish_timeout: float = 3.0,
                 body_timeout: float = 5.0, clock: Callable[[], float] = time.monotonic,
                 today: Callable[[], date] = _utc_today) -> None:
        self._vault, self._producer, self._topic, self._raw_topic = vault, producer, fetch_topic, raw_topic
        self._fitbit_secret = fitbit_secret
        self._verify_code, self._google_token = fitbit_verify_code, google_token
        self._keysets = keysets
        self._window, self._clock, self._today = repeat_window, clock, today
        self._backfill_days, self._publish_timeout, self._body_timeout = backfill_days, publish_timeout, body_timeout
        self._seen: OrderedDict[bytes, _Seen] = OrderedDict()
        self._owed: dict[bytes, _Seen] = {}  # entries with deferred fetches, until published
        self._delivered: OrderedDict[bytes, tuple[str, float]] = OrderedDict()  # Google: operation, when

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
            if self._owed:
                logger.error("%d deferred Fitbit fetch request(s) lost at shutdown: Kafka did not acknowledge them",
                             sum(len(seen.deferred or ()) for seen in self._owed.values()))

    async def _publish_due_forever(self) -> None:
        while True:
            await asyncio.sleep(min(1.0, self._window / 4))
            await self._publish_due(self._clock() - self._window)

    async def _publish_due(self, opened_before: float) -> None:
        """Publish the owed fetches whose window opened before ``opened_before``; one Kafka does
        not acknowledge stays owed (tried again next round, which this one then ends: the broker
        is down for the rest too)."""
        due = [digest for digest, seen in self._owed.items() if seen.at <= opened_before]
        for digest in due:
            seen = self._owed.pop(digest)
            found, seen.deferred = seen.deferred or [], None
            if await self._publish(found):
                NOTIFICATIONS.labels(Provider.FITBIT.value, "deferred_published").inc()
                continue
            NOTIFICATIONS.labels(Provider.FITBIT.value, "publish_failed").inc()
            if digest not in self._owed:  # else a repeat during the attempt already owes these fetches
                seen.deferred = found
                self._owed[digest] = seen
            return

    async def _read(self, request: web.Request) -> bytes:
        """The body, within ``body_timeout`` seconds and the app's size limit; ``_Rejected`` otherwise."""
        try:
            return await asyncio.wait_for(request.read(), self._body_timeout)
        except TimeoutError:
            raise _Rejected(408, "body_timeout") from None
        except web.HTTPRequestEntityTooLarge:
            raise _Rejected(413, "too_large") from None

    async def _deliver(self, records: list[_Record]) -> bool:
        """Send ``records`` and wait, at most ``publish_timeout`` seconds, until Kafka acknowledged
        every one; False (logged by topic and error type) when it did not."""
        if not records:
            return True

        async def send_all() -> None:
            futures = [await self._producer.send(topic, value, key=key) for topic, value, key in records]
            await asyncio.gather(*futures)

        try:
            await asyncio.wait_for(send_all(), self._publish_timeout)
        except (KafkaError, TimeoutError) as error:
            logger.warning("%d record(s) for %s not acknowledged by Kafka within %gs (%s)", len(records),
                           ", ".join(sorted({topic for topic, _, _ in records})), self._publish_timeout,
                           type(error).__name__)
            return False
        return True

    # ------------------------------------------------------------------ Fitbit
    async def fitbit_verify(self, request: web.Request) -> web.Response:
        given = request.query.get(fitbit_spec.VERIFY_PARAMETER, "")
        good = hmac.compare_digest(_raw(given), self._verify_code.encode())
        NOTIFICATIONS.labels("fitbit", "verified" if good else "verify_refused").inc()
        return web.Response(status=204 if good else 404)

    async def fitbit(self, request: web.Request) -> web.Response:
        started = time.perf_counter()
        try:
            body = await self._read(request)
            found = await self._fitbit_requests(request, body)
            digest = hashlib.sha256(body).digest()
            if self._is_repeat(digest, found):
                raise _Rejected(204, "replayed")
            if not await self._publish(found):
                raise _not_published()  # not remembered as seen: Fitbit's retry is news, not a repeat
            self._seen[digest] = _Seen(self._clock())
        except _Rejected as rejected:
            NOTIFICATIONS.labels(Provider.FITBIT.value, rejected.outcome).inc()
            return web.Response(status=rejected.status)
        except (DecodeError, OverflowError, ValueError) as error:  # a case the checks missed: still no 500
            logger.warning("a Fitbit notification could not be handled: %s", type(error).__name__)
            NOTIFICATIONS.labels(Provider.FITBIT.value, "malformed").inc()
            return web.Response(status=400)
        finally:
            ACK_SECONDS.labels(Provider.FITBIT.value).observe(time.perf_counter() - started)
        NOTIFICATIONS.labels(Provider.FITBIT.value, "accepted" if found else "unknown_user").inc()
        return web.Response(status=204)

    async def _fitbit_requests(self, request: web.Request, body: bytes) -> _Found:
        """The fetches a verified body asks for; each malformed item is skipped and counted, and a
        body with no good item is refused (module docstring)."""
        expected = fitbit_spec.signature(body, self._fitbit_secret).encode()
        if not hmac.compare_digest(_raw(request.headers.get(fitbit_spec.SIGNATURE_HEADER, "")), expected):
            raise _Rejected(404, "bad_signature")  # Fitbit: answer 404 to a notification that fails verification
        items = _json(body)
        if not isinstance(items, list) or not items:
            raise _Rejected(400, "malformed")
        found, bad = [], 0
        for item in items:
            day = _day(item.get("date")) if isinstance(item, dict) else None
            if day is None or not isinstance(item.get("ownerId"), str):
                bad += 1
                continue
            collection = item.get("collectionType") or "activities"
            if collection not in _FITBIT_COLLECTIONS:
                continue  # body/foods/userRevokedAccess: not fetched by this connector
            rid = await self._vault.find_vendor_user(Provider.FITBIT, item["ownerId"])
            if rid is not None:
                found.append((rid, FetchRequest(Provider.FITBIT, collection, day, day, FetchReason.WEBHOOK,
                                                time.time())))
        if bad == len(items):
            raise _Rejected(400, "malformed")  # nothing to act on: refused, counted once
        if bad:
            logger.warning("a signed Fitbit notification had %d malformed item(s) of %d; the rest is acted on",
                           bad, len(items))
            NOTIFICATIONS.labels(Provider.FITBIT.value, "malformed").inc(bad)
        return found

    async def _publish(self, found: _Found) -> bool:
        return await self._deliver([(self._topic, fetch.to_bytes(), rid.encode()) for rid, fetch in found])

    def _is_repeat(self, digest: bytes, found: _Found) -> bool:
        """Whether this verified Fitbit body was seen (and published) within the window; a repeat
        owes its fetches at the window's end (module docstring). A new body is remembered by the
        caller, once Kafka has its fetches."""
        now = self._clock()
        while self._seen and (len(self._seen) > _REPLAY_MEMORY
                              or next(iter(self._seen.values())).at < now - self._window):
            self._seen.popitem(last=False)  # an owed entry stays in _owed until it is published
        seen = self._seen.get(digest)
        if seen is None:
            return False
        if found and seen.deferred is None:
            seen.deferred = found
            self._owed[digest] = seen
        return True

    # ------------------------------------------------------------------ Google Health
    async def google(self, request: web.Request) -> web.Response:
        started = time.perf_counter()
        try:
            body = await self._read(request)
            notifications = await self._google_verified(request, body)
            for notification in notifications:  # one not published ends the call: 503, Google retries
                NOTIFICATIONS.labels(_GOOGLE.value, await self._google_notification(notification)).inc()
            return web.Response(status=204)
        except _Rejected as rejected:
            NOTIFICATIONS.labels(_GOOGLE.value, rejected.outcome).inc()
            return web.Response(status=rejected.status)
        except (DecodeError, OverflowError, ValueError) as error:  # a case the checks missed: still no 500
            logger.warning("a Google Health notification could not be handled: %s", type(error).__name__)
            NOTIFICATIONS.labels(_GOOGLE.value, "malformed").inc()
            return web.Response(status=400)
        finally:
            ACK_SECONDS.labels(_GOOGLE.value).observe(time.perf_counter() - started)

    async def _google_verified(self, request: web.Request, body: bytes) -> list[Notification]:
        """The body's notifications once the call proved it is Google's; ``_Rejected`` otherwise
        (and 201 for the handshake, which is not an error)."""
        authorization = request.headers.get("Authorization")
        if is_verification(body):
            if authorization is not None and self._is_google_secret(authorization):
                raise _Rejected(201, "verified")
            raise _Rejected(401, "verify_refused")
        if authorization is not None and not self._is_google_secret(authorization):
            raise _Rejected(401, "bad_authorization")
        signatures = signature_values(request.headers)
        if not signatures:
            raise _Rejected(401, "missing_signature")
        await self._check_signature(body, signatures)
        try:
            items = orjson.loads(body)
        except orjson.JSONDecodeError:
            items = None
        parsed, unreadable = read_notifications(items if isinstance(items, list) else [items])
        readable = [notification for notification in parsed if _within_years(notification)]
        reasons = [error.reason for error in unreadable] + ["a date outside the years "
                                                            f"{_YEARS[0]}-{_YEARS[-1]}"] * (len(parsed) - len(readable))
        for reason in reasons:
            # signed by Google yet unreadable: the format changed again, which someone must hear of
            logger.warning("a signed Google Health notification could not be read: %s", reason)
        if not readable:  # nothing to act on: the body is refused (and counted once, as malformed)
            raise _Rejected(400, "malformed")
        # the readable ones are acted on and answered 204; each unreadable one beside them is counted
        NOTIFICATIONS.labels(Provider.GOOGLE_HEALTH.value, "malformed").inc(len(reasons))
        return readable

    def _is_google_secret(self, authorization: str) -> bool:
        return hmac.compare_digest(_raw(authorization), self._google_token.encode())

    async def _check_signature(self, body: bytes, signatures: list[str]) -> None:
        keyset = await self._keysets.current()
        if keyset is None:
            raise _Rejected(503, "no_keys")
        verdicts = {verify_signature(body, signature, keyset) for signature in signatures}
        if Verdict.VALID in verdicts:
            return
        if Verdict.UNKNOWN_KEY in verdicts:  # signed with a key newer than ours: keys rotate
            keyset = await self._keysets.after_unknown_key()
            if keyset is not None and any(verify_signature(body, signature, keyset) is Verdict.VALID
                                          for signature in signatures):
                return
        raise _Rejected(403, "bad_signature")

    async def _google_notification(self, notification: Notification) -> str:
        """Publish what one verified notification asks for; returns its outcome (``_Rejected``
        503 when Kafka did not take it)."""
        digest = _delivery_key(notification)
        if self._is_redelivery(digest, notification.operation):
            return "redelivered"
        outcome = await self._google_publish(notification)
        self._remember(digest, notification.operation)  # only once handled: a failed one may come again
        return outcome

    def _google_dates(self, notification: Notification) -> tuple[date, date] | None:
        """The dates to fetch: the notification's, clamped to the backfill window and to the last
        ``MAX_WEBHOOK_DAYS`` before its end; None when none is left (module docstring)."""
        asked_first, asked_last = notification.dates()
        today = self._today()
        first = max(asked_first, today - timedelta(days=self._backfill_days))
        last = min(asked_last, today + timedelta(days=1))
        if first > last:
            return None
        first = max(first, last - timedelta(days=MAX_WEBHOOK_DAYS))
        if (first, last) != (asked_first, asked_last):
            logger.info("a Google Health %s notification asked for %d dates; %d fetched", notification.data_type,
                        (asked_last - asked_first).days + 1, (last - first).days + 1)
            NOTIFICATIONS.labels(_GOOGLE.value, "clamped").inc()
        return first, last

    async def _google_publish(self, notification: Notification) -> str:
        deleting = notification.operation == "DELETE"
        if not deleting and notification.data_type not in google_health_spec.DATA_TYPES:
            return "ignored_data_type"
        rid = await self._vault.find_vendor_user(_GOOGLE, notification.health_user_id)
        if rid is None:
            return "unknown_user"
        if deleting:
            page = RawPage(provider=_GOOGLE, data_type="deletions", date=None, body=deletion_body(notification),
                           fetched_at=time.time(), request_id=uuid.uuid4().hex, origin="webhook")
            if not await self._deliver([(self._raw_topic, page.to_bytes(), rid.encode())]):
                raise _not_published()
            return "deleted"
        dates = self._google_dates(notification)
        if dates is None:
            return "out_of_range"
        fetch = FetchRequest(_GOOGLE, notification.data_type, dates[0].isoformat(), dates[1].isoformat(),
                             FetchReason.WEBHOOK, time.time())
        if not await self._publish([(rid, fetch)]):
            raise _not_published()
        return "accepted"

    def _is_redelivery(self, digest: bytes, operation: str) -> bool:
        now = self._clock()
        while self._delivered and (len(self._delivered) > _REPLAY_MEMORY
                                   or next(iter(self._delivered.values()))[1] < now - self._window):
            self._delivered.popitem(last=False)
        last = self._delivered.get(digest)
        return last is not None and last[0] == operation

    def _remember(self, digest: bytes, operation: str) -> None:
        self._delivered[digest] = (operation, self._clock())
        self._delivered.move_to_end(digest)  # the oldest first, so that expiry pops from the front


def deletion_body(notification: Notification) -> bytes:
    """The ``deletions`` raw page's body for a DELETE notification (module docstring)."""
    return orjson.dumps({"operation": "DELETE", "dataType": notification.data_type,
                         "intervals": [_interval_json(interval) for interval in notification.intervals]})


def _interval_json(interval: Interval) -> dict[str, dict[str, str]]:
    part = {}
    if interval.start is not None and interval.end is not None:
        part["physicalTimeInterval"] = {"startTime": _instant(interval.start),
                                        "endTime": _instant(interval.end, up=True)}
    if interval.civil_start is not None and interval.civil_end is not None:
        part["civilIso8601TimeInterval"] = {"startTime": f"{interval.civil_start:%Y-%m-%dT%H:%M:%S}",
                                            "endTime": _civil(interval.civil_end)}
    return part


def _civil(moment: datetime) -> str:
    """A civil end in whole seconds, rounded up like an instant's."""
    return f"{_second_up(moment):%Y-%m-%dT%H:%M:%S}"


def _instant(moment: datetime, *, up: bool = False) -> str:
    """Whole seconds in UTC (the parser's promise: aware UTC); an end rounds up."""
    return f"{_second_up(moment) if up else moment:%Y-%m-%dT%H:%M:%SZ}"


def _second_up(moment: datetime) -> datetime:
    """The next whole second (or the moment itself): the sample at an end's last second (samples
    are kept to the second) stays inside the interval."""
    return moment.replace(microsecond=0) + timedelta(seconds=1) if moment.microsecond else moment


def _delivery_key(notification: Notification) -> bytes:
    """What makes two notifications the same change, bar the operation: user, data type, intervals."""
    return hashlib.sha256(repr((notification.health_user_id, notification.data_type,
                                notification.intervals)).encode()).digest()


def _json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise _Rejected(400, "malformed") from None


def _day(value: Any) -> str | None:
    """``value`` if it is a ``YYYY-MM-DD`` date (exactly: ``2026-1-5`` and ``20260105`` are not)
    in the years ``_YEARS``; None otherwise."""
    if not isinstance(value, str):
        return None
    try:
        parsed = date.fromisoformat(value)
    except ValueError:
        return None
    return value if parsed.isoformat() == value and parsed.year in _YEARS else None


def _within_years(notification: Notification) -> bool:
    moments = [moment for interval in notification.intervals
               for moment in (interval.start, interval.end, interval.civil_start, interval.civil_end)]
    return all(moment.year in _YEARS for moment in moments if moment is not None)


def _raw(header: str) -> bytes:
    """A header's bytes as sent: aiohttp decodes them with surrogateescape, so a strict encode of
    a non-UTF-8 value would raise (a 500) rather than fail the comparison."""
    return header.encode("utf-8", "surrogateescape")
