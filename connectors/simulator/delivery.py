"""The simulator's webhook side: verifying the subscriber endpoints, then notifying them when
devices sync (Fitbit: signed arrays of collection/date/owner; Google: signed arrays of
documented notifications) and when samples are withdrawn or restored at the vendor (Google).

Fitbit signs ``X-Fitbit-Signature = base64(HMAC-SHA1(body, client_secret + "&"))`` (the rule is
``fitbit_spec.signature``, which the gateway checks with) and verifies a
subscriber with two GETs (``?verify=<right code>`` → 204, a wrong code → 404).

Google verifies with two POSTs of ``{"type": "verification"}``, with the Authorization value
(→ 201) and without (→ 401/403). Then each device sync is one POST of a JSON array holding one
``{"data": {"version", "healthUserId", "operation": "UPSERT", "dataType", "intervals":
[{physicalTimeInterval, civilDateTimeInterval, civilIso8601TimeInterval}]}}`` per data type,
the interval spanning the synced local days (physical in UTC, civil on the account's wall
clock); a withdrawn or restored interval is one POST of a one-element array (DELETE or UPSERT).
Bodies are signed with the simulator's key (``keyset_routes.SigningKey``) under the two header
names the sources disagree on, alternating so that a receiver is tested with both, and carry
the Authorization secret too (Google documents it; a user reports it missing: receivers
should accept either). ``clientProvidedSubscriptionName`` is sent under the MANUAL policy only.

Delivery is at least once, as the vendors' is: a notification the subscriber does not acknowledge
(a 5xx, 408 or 429 answer, no answer at all) is sent again with backoff (1, 2, 4 … 30 s) for up to
``retry_for_s`` (Google documents retries "for up to 7 days"; an hour here). A 4xx other than
those is final. For fault tests and demos, ``copies`` sends each notification that many times at
random moments over the next rounds (so copies arrive out of order among other notifications),
and ``forged_share`` adds that share of tampered copies (one per 1/share sends, copies counted)
under the original signature, which a subscriber must refuse (``webhooks_forged_accepted`` counts the ones it did not).
During an outage of the vendor (``World.faults.down()``) devices cannot sync: no round runs.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import random
import secrets
import time
import zoneinfo
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import aiohttp
import orjson

from connectors.simulator.keyset_routes import SigningKey
from connectors.simulator.world import Account, VendorChange, World
from connectors.vendors import fitbit_spec, google_health_spec
from connectors.vendors.google_health_notifications import SIGNATURE_HEADERS
from models.providers import Provider
from runtime.metrics import counter

__all__ = ["WebhookDelivery"]

logger = logging.getLogger(__name__)
SENT = counter("simulator_webhooks_total", "Webhook notifications the simulator sent, by answer", ["provider",
                                                                                                 "outcome"])
_SUBSCRIPTION_NAME = "wearables"  # the subscription id a MANUAL subscriber gave
_RETRIED_STATUSES = frozenset({408, 429})  # besides every 5xx: what a vendor's delivery retries
_BACKOFF_CAP_S = 30.0
_TICK_S = 0.2  # how often queued sends are looked at while some are waiting


@dataclass(order=True)
class _Send:
    """One POST to make at ``due`` (time.monotonic()): a first try, a retry or a copy."""

    due: float
    order: int
    provider: Provider = field(compare=False)
    url: str = field(compare=False)
    body: bytes = field(compare=False)
    headers: dict[str, str] = field(compare=False)
    first_at: float = field(compare=False)
    attempt: int = field(default=0, compare=False)
    forged: bool = field(default=False, compare=False)


class WebhookDelivery:
    """Verifies the subscriber endpoints, then notifies them of each round of device syncs and
    of the world's announced changes.

    ::

        delivery = WebhookDelivery(world, fitbit_url=..., google_url=..., fitbit_secret=...,
                                   fitbit_verify_code=..., google_token=..., signer=SigningKey(),
                                   interval_s=5.0)
        task = asyncio.ensure_future(delivery.run(stop))

    :param world: whose ``sync_tick`` says which accounts' days changed, ``take_changes`` what was
        withdrawn or restored.
    :param fitbit_url: the Fitbit subscriber endpoint (None: no Fitbit notifications).
    :param google_url: the Google Health subscriber endpoint (None: none).
    :param fitbit_secret: our Fitbit client secret, the signature key.
    :param fitbit_verify_code: the verification code of the Fitbit subscriber.
    :param google_token: the Authorization value the Google subscriber expects.
    :param signer: the key Google notifications are signed with (its keyset is served).
    :param interval_s: seconds between sync rounds.
    """

    def __init__(self, world: World, *, fitbit_url: str | None, google_url: str | None, fitbit_secret: str,
                 fitbit_verify_code: str, google_token: str, signer: SigningKey, interval_s: float,
                 copies: int = 1, forged_share: float = 0.0, retry_for_s: float = 3600.0) -> None:
        self.world = world
        self.copies, self.forged_share, self.retry_for_s = copies, forged_share, retry_for_s
        self._queue: list[_Send] = []  # a heap by due time
        self._order = itertools.count()
        self._forged_owed = 0.0  # forged copies owed so far (``forged_share`` of every send)
        self.urls = {Provider.FITBIT: fitbit_url, Provider.GOOGLE_HEALTH: google_url}
        self.fitbit_secret, self.verify_code, self.google_token = fitbit_secret, fitbit_verify_code, google_token
        self.signer = signer
        self.interval_s = interval_s
        self.verified: dict[Provider, bool] = {p: False for p in Provider}
        self._signed = 0  # Google bodies signed so far: picks the header name

    async def run(self, stop: asyncio.Event) -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
            next_round = time.monotonic()
            while not stop.is_set():
                if time.monotonic() >= next_round:
                    next_round = time.monotonic() + self.interval_s
                    if not self.world.faults.down():  # devices cannot sync to a vendor that is down
                        await self.round(session)
                await self._send_due(session)
                wait = next_round - time.monotonic()
                if self._queue:
                    wait = min(wait, max(0.0, self._queue[0].due - time.monotonic()), _TICK_S)
                try:
                    await asyncio.wait_for(stop.wait(), max(0.0, wait))
                except TimeoutError:
                    pass

    @property
    def pending(self) -> int:
        """Notifications waiting to be sent again (retries and copies)."""
        return len(self._queue)

    async def _send_due(self, session: aiohttp.ClientSession) -> None:
        due: list[_Send] = []
        while self._queue and self._queue[0].due <= time.monotonic():
            due.append(heapq.heappop(self._queue))
        await asyncio.gather(*(self._send(session, send) for send in due))

    async def round(self, session: aiohttp.ClientSession) -> None:
        """One round: verify who is not yet, tell of this round's syncs, then of announced changes."""
        for provider, url in self.urls.items():
            if url and not self.verified[provider]:
                self.verified[provider] = await self._verify(session, provider, url)
        changes = self.world.sync_tick()
        await asyncio.gather(*(self._notify(session, account, days) for account, days in changes
                               if self.verified[account.provider]))
        if self.verified[Provider.GOOGLE_HEALTH]:  # else they wait for a verified subscriber
            for change in self.world.take_changes():
                if self.world.notifies(change.account):
                    await self._post_google(session, [self._google_change(change)])

    async def _verify(self, session: aiohttp.ClientSession, provider: Provider, url: str) -> bool:
        try:
            if provider is Provider.FITBIT:
                async with session.get(url, params={fitbit_spec.VERIFY_PARAMETER: self.verify_code}) as right:
                    ok = right.status == 204
                async with session.get(url, params={fitbit_spec.VERIFY_PARAMETER: secrets.token_hex(8)}) as wrong:
                    ok = ok and wrong.status == 404
            else:
                body = b'{"type": "verification"}'
                async with session.post(url, data=body, headers={"Authorization": self.google_token,
                                                                 "Content-Type": "application/json"}) as right:
                    ok = right.status == 201
                async with session.post(url, data=body, headers={"Content-Type": "application/json"}) as wrong:
                    ok = ok and wrong.status in (401, 403)
        except (aiohttp.ClientError, TimeoutError):
            return False  # the subscriber is not up yet: try again next round
        if not ok:
            logger.warning("simulator: the %s subscriber at %s failed verification", provider.value, url)
        return ok

    async def _notify(self, session: aiohttp.ClientSession, account: Account, days: list[date]) -> None:
        if account.provider is Provider.FITBIT:
            url = self.urls[account.provider]
            assert url is not None
            body = orjson.dumps([{"collectionType": collection, "date": d.isoformat(), "ownerId": account.user_id,
                                  "ownerType": "user", "subscriptionId": "sim"}
                                 for d in days for collection in fitbit_spec.COLLECTIONS])
            await self._post(session, account.provider, url, body, {
                fitbit_spec.SIGNATURE_HEADER: fitbit_spec.signature(body, self.fitbit_secret)})
            return
        zone = zoneinfo.ZoneInfo(account.timezone)
        start = datetime.combine(days[0], datetime.min.time(), zone)
        end = datetime.combine(days[-1] + timedelta(days=1), datetime.min.time(), zone)
        await self._post_google(session, [self._google_item(account, "UPSERT", data_type, start, end)
                                          for data_type in google_health_spec.DATA_TYPES])

    def _google_change(self, change: VendorChange) -> dict[str, Any]:
        zone = zoneinfo.ZoneInfo(change.account.timezone)
        return self._google_item(change.account, change.operation, change.data_type,
                                 datetime.fromtimestamp(change.start, zone), datetime.fromtimestamp(change.end, zone))

    def _google_item(self, account: Account, operation: str, data_type: str, start: datetime,
                     end: datetime) -> dict[str, Any]:
        """One notification; ``start`` and ``end`` are aware, in the account's zone."""
        data: dict[str, Any] = {"version": "1", "healthUserId": account.user_id, "operation": operation,
                                "dataType": data_type, "intervals": [{
                                    "physicalTimeInterval": {"startTime": _utc(start), "endTime": _utc(end)},
                                    "civilDateTimeInterval": {"startDateTime": _civil_parts(start),
                                                              "endDateTime": _civil_parts(end)},
                                    "civilIso8601TimeInterval": {"startTime": f"{start:%Y-%m-%dT%H:%M:%S}",
                                                                 "endTime": f"{end:%Y-%m-%dT%H:%M:%S}"}}]}
        if self.world.subscription_policy == "manual":
            data = {"version": "1", "clientProvidedSubscriptionName": _SUBSCRIPTION_NAME, **data}
        return {"data": data}

    async def _post_google(self, session: aiohttp.ClientSession, items: list[dict[str, Any]]) -> None:
        url = self.urls[Provider.GOOGLE_HEALTH]
        assert url is not None
        body = orjson.dumps(items)
        header = SIGNATURE_HEADERS[self._signed % len(SIGNATURE_HEADERS)]
        self._signed += 1
        await self._post(session, Provider.GOOGLE_HEALTH, url, body,
                         {header: self.signer.sign(body), "Authorization": self.google_token})

    async def _post(self, session: aiohttp.ClientSession, provider: Provider, url: str, body: bytes,
                    headers: dict[str, str]) -> None:
        """Send one notification now, its extra copies later, and a forged copy for ``forged_share`` of them."""
        now = time.monotonic()
        signed = {**headers, "Content-Type": "application/json"}
        for _ in range(self.copies - 1):  # out of order: each copy at a random moment of the next rounds
            self._schedule(_Send(now + random.uniform(0, 3 * self.interval_s), next(self._order), provider, url,
                                 body, signed, now))
        # forgeries are an exact share of what is sent (copies included), not a roll of the dice
        self._forged_owed += self.forged_share * self.copies
        while self._forged_owed >= 1:
            self._forged_owed -= 1
            self._schedule(_Send(now + random.uniform(0, 3 * self.interval_s), next(self._order), provider, url,
                                 _tampered(body), signed, now, forged=True))
        await self._send(session, _Send(now, next(self._order), provider, url, body, signed, now))

    def _schedule(self, send: _Send) -> None:
        heapq.heappush(self._queue, send)

    async def _send(self, session: aiohttp.ClientSession, send: _Send) -> None:
        status: int | None
        try:
            async with session.post(send.url, data=send.body, headers=send.headers) as answer:
                status = answer.status
        except (aiohttp.ClientError, TimeoutError):
            status = None
        if send.forged:
            outcome = "forged_accepted" if status is not None and status < 300 else "forged_refused"
        elif status is not None and status < 300:
            outcome = "acknowledged"
        elif status is None or status >= 500 or status in _RETRIED_STATUSES:
            outcome = "unreachable" if status is None else "refused"
            self._retry(send)
        else:
            outcome = "refused"
        SENT.labels(send.provider.value, outcome).inc()
        self.world.stats[f"webhooks_{outcome}"] += 1

    def _retry(self, send: _Send) -> None:
        delay = min(_BACKOFF_CAP_S, 2.0 ** send.attempt)
        if time.monotonic() + delay - send.first_at > self.retry_for_s:
            self.world.stats["webhooks_given_up"] += 1
            return
        self.world.stats["webhooks_retried"] += 1
        self._schedule(_Send(time.monotonic() + delay, next(self._order), send.provider, send.url, send.body,
                             send.headers, send.first_at, send.attempt + 1))


def _tampered(body: bytes) -> bytes:
    """The body with one character changed, so its signature no longer matches (a forgery)."""
    spot = body.rfind(b'"')  # inside JSON the last quote closes a string: the character before it changes
    if spot <= 0:
        return body + b" "
    changed = b"0" if body[spot - 1:spot] != b"0" else b"1"
    return body[:spot - 1] + changed + body[spot:]


def _utc(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}"


def _civil_parts(moment: datetime) -> dict[str, dict[str, int]]:
    """Google's ``{date, time}`` civil form of the wall-clock time."""
    return {"date": {"year": moment.year, "month": moment.month, "day": moment.day},
            "time": {"hours": moment.hour, "minutes": moment.minute, "seconds": moment.second,
                     "nanos": moment.microsecond * 1000}}
