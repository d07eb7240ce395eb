"""The simulator's webhook side: verifying the subscriber endpoints, then notifying them when
devices sync (Fitbit: signed arrays of collection/date/owner; Google: one call per data type).

Fitbit signs ``X-Fitbit-Signature = base64(HMAC-SHA1(body, client_secret + "&"))`` (the rule is
``fitbit_spec.signature``, which the gateway checks with) and verifies a
subscriber with two GETs (``?verify=<right code>`` → 204, a wrong code → 404). Google verifies
with two POSTs of ``{"type": "verification"}``, with the Authorization value (→ 201) and without
(→ 401/403), then sends notifications with that Authorization header. The Google notification
body is not documented publicly; ours is ``{"type": "notification", "notificationId", "user",
"dataType", "interval": {"startTime", "endTime"}}``.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import uuid
from datetime import UTC, date, datetime, timedelta

import aiohttp
import orjson

from connectors.simulator.world import Account, World
from connectors.vendors import fitbit_spec, google_health_spec
from models.providers import Provider
from runtime.metrics import counter

__all__ = ["WebhookDelivery"]

logger = logging.getLogger(__name__)
SENT = counter("simulator_webhooks_total", "Webhook notifications the simulator sent, by answer", ["provider",
                                                                                                 "outcome"])


class WebhookDelivery:
    """Verifies the subscriber endpoints, then notifies them of each round of device syncs.

    ::

        delivery = WebhookDelivery(world, fitbit_url=..., google_url=..., fitbit_secret=...,
                                   fitbit_verify_code=..., google_token=..., interval_s=5.0)
        task = asyncio.ensure_future(delivery.run(stop))

    :param world: whose ``sync_tick`` says which accounts' days changed.
    :param fitbit_url: the Fitbit subscriber endpoint (None: no Fitbit notifications).
    :param google_url: the Google Health subscriber endpoint (None: none).
    :param fitbit_secret: our Fitbit client secret, the signature key.
    :param fitbit_verify_code: the verification code of the Fitbit subscriber.
    :param google_token: the Authorization value the Google subscriber expects.
    :param interval_s: seconds between sync rounds.
    """

    def __init__(self, world: World, *, fitbit_url: str | None, google_url: str | None, fitbit_secret: str,
                 fitbit_verify_code: str, google_token: str, interval_s: float) -> None:
        self.world = world
        self.urls = {Provider.FITBIT: fitbit_url, Provider.GOOGLE_HEALTH: google_url}
        self.fitbit_secret, self.verify_code, self.google_token = fitbit_secret, fitbit_verify_code, google_token
        self.interval_s = interval_s
        self.verified: dict[Provider, bool] = {p: False for p in Provider}

    async def run(self, stop: asyncio.Event) -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
            while not stop.is_set():
                for provider, url in self.urls.items():
                    if url and not self.verified[provider]:
                        self.verified[provider] = await self._verify(session, provider, url)
                changes = self.world.sync_tick()
                await asyncio.gather(*(self._notify(session, account, days) for account, days in changes
                                       if account.subscribed and self.verified[account.provider]))
                try:
                    await asyncio.wait_for(stop.wait(), self.interval_s)
                except TimeoutError:
                    pass

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
        url = self.urls[account.provider]
        assert url is not None
        if account.provider is Provider.FITBIT:
            body = orjson.dumps([{"collectionType": collection, "date": d.isoformat(), "ownerId": account.user_id,
                                  "ownerType": "user", "subscriptionId": "sim"}
                                 for d in days for collection in fitbit_spec.COLLECTIONS])
            await self._post(session, account.provider, url, body, {
                fitbit_spec.SIGNATURE_HEADER: fitbit_spec.signature(body, self.fitbit_secret)})
            return
        start = datetime.combine(days[0] - timedelta(days=1), datetime.min.time(), UTC)
        end = datetime.combine(days[-1] + timedelta(days=2), datetime.min.time(), UTC)
        for data_type in google_health_spec.DATA_TYPES:
            body = orjson.dumps({"type": "notification", "notificationId": str(uuid.uuid4()),
                                 "user": f"users/{account.user_id}", "dataType": data_type,
                                 "interval": {"startTime": f"{start:%Y-%m-%dT%H:%M:%SZ}",
                                              "endTime": f"{end:%Y-%m-%dT%H:%M:%SZ}"}})
            await self._post(session, account.provider, url, body, {"Authorization": self.google_token})

    async def _post(self, session: aiohttp.ClientSession, provider: Provider, url: str, body: bytes,
                    headers: dict[str, str]) -> None:
        try:
            async with session.post(url, data=body, headers={**headers, "Content-Type": "application/json"}) as r:
                outcome = "acknowledged" if r.status < 300 else "refused"
        except (aiohttp.ClientError, TimeoutError):
            outcome = "unreachable"
        SENT.labels(provider.value, outcome).inc()
        self.world.stats[f"webhooks_{outcome}"] += 1
