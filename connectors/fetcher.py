"""Carry out one fetch request: every page of every day asked for, onto ``raw.<provider>``.

Per call: wait for the rate limiter, take a fresh access token, call; on 429 wait for the
vendor's reset, on a 401 refresh once (a 401 again is retried with backoff), on 5xx/timeouts
and a failed refresh retry with jittered exponential backoff, on a grant the token endpoint
refused (``invalid_grant``) stop. A vendor answering "unavailable" to every call is down
(``VendorHealth``): calls then wait for a probe to get through, spending no attempts. A day
counts as done only when all its pages are acknowledged by Kafka, and the participant's cursor
moves only over done days, in order: it never passes data that failed to publish. An undated
type (the account's devices) is one snapshot per request, filed under the request's last day.

A data type the participant did not grant is not asked for (``Link.denied_data_types``). One the
vendor refuses for a missing scope (``ScopeMissing``: they unticked it at consent, or took it back)
is set aside for the rest of the request, not retried, and denied in the vault, so that no later
request (a poll's, a webhook's) asks for it again until they consent anew; the changed link goes
to the ``participants`` topic. The request's other data types go on.

A day's pages are followed by their ``nextPageToken`` until the vendor gives none, but never round
a loop: a token the day already asked for, or a day past ``MAX_PAGES_PER_DAY`` pages, is the
vendor's error (``VendorRejected``, not retried; ``connector_paging_stopped_total`` counts it).
The pages so far stay published, the request fails, and the cursor stays before that day.

A webhook's fetch moves no cursor (it is not part of the sweep of days) and its offset is
committed whatever its outcome, so a day it failed on moves the cursor back before that day if
it was past it: the next poll, which starts a little before the cursor, reads the day again. A
poll moves the cursor only over days that join on to it, so a poll already under way when the
webhook's fetch failed does not jump the cursor back over that day.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta

from connectors.errors import (
    AccessRevoked,
    RateLimited,
    ScopeMissing,
    TokenExpired,
    VendorError,
    VendorRejected,
    VendorUnavailable,
    quota_remaining,
)
from connectors.ratelimit import RateLimiter
from connectors.tokens import TokenManager
from connectors.vault import TokenVault
from connectors.vendor_health import VendorHealth
from connectors.vendors import fitbit_spec, google_health_spec
from connectors.vendors.base import VendorClient, VendorPage, backoff_delay
from models.fetch import FetchReason, FetchRequest
from models.participants import LinkStatus
from models.providers import Provider
from models.raw import RawPage
from runtime.metrics import counter, histogram
from runtime.settings import SchedulerSettings

__all__ = ["MAX_PAGES_PER_DAY", "FetchOutcome", "Fetcher"]

#: Pages of one data type and day followed at most. At ``page_size=1000`` a day of 1-s heart rate is
#: about 87 pages; past this many the vendor is looping, not paging.
MAX_PAGES_PER_DAY = 200

#: outcome: ok | rate_limited (a 429) | token_expired | revoked | scope_missing | unavailable (5xx, timeout)
_SPECS = {Provider.FITBIT: fitbit_spec, Provider.GOOGLE_HEALTH: google_health_spec}  # their data types
_OUTCOMES = ("ok", "rate_limited", "token_expired", "revoked", "scope_missing", "unavailable")
CALLS = counter("connector_requests_total", "Vendor API calls, by data type and outcome",
                ["provider", "data_type", "outcome"],
                initial=[(provider.value, data_type, outcome) for provider, spec in _SPECS.items()
                         for data_type in (*spec.DATA_TYPES, *spec.UNDATED_TYPES) for outcome in _OUTCOMES])
CALL_SECONDS = histogram("connector_request_seconds", "Vendor API call latency", ["provider"])
PAGES = counter("connector_pages_published_total", "Raw pages published", ["provider", "data_type"])
FETCHES = counter("connector_fetches_total", "Fetch requests carried out, by outcome", ["provider", "reason",
                                                                                       "outcome"])
PAGING_STOPPED = counter("connector_paging_stopped_total",
                         "Days whose paging was given up as the vendor's error: a page token repeated, or more "
                         "pages than the cap", ["provider", "data_type", "reason"],
                         initial=[(provider.value, data_type, reason) for provider, spec in _SPECS.items()
                                  for data_type in (*spec.DATA_TYPES, *spec.UNDATED_TYPES)
                                  for reason in ("token_repeated", "page_cap")])
SCOPE_MISSING = counter("connector_scope_missing_total",
                        "Data types a vendor refused for a scope the participant did not grant (then denied in the "
                        "vault)", ["provider", "data_type"])

Publish = Callable[[str, RawPage], Awaitable["asyncio.Future[object]"]]
LinkChanged = Callable[[str], Awaitable[None]]


@dataclass(slots=True)
class _Tally:
    pages: int = 0
    size: int = 0  # bytes


@dataclass(frozen=True, slots=True)
class FetchOutcome:
    outcome: str  # done | failed | revoked | not_linked | error (a bug, logged by the scheduler)
    pages: int = 0
    samples_bytes: int = 0


class Fetcher:
    """Carries out fetch requests: every page of every day asked for, published, cursors moved.

    ::

        fetcher = Fetcher(retry=settings.scheduler, vault=vault, tokens=tokens, clients=clients, limiter=limiter,
                          publish=publish)
        outcome = await fetcher.fetch(research_id, request)  # FetchOutcome("done", pages, bytes)

    :param retry: the retry policy (``fetch_max_attempts``, ``retry_base_delay``).
    :param vault: the participant's link (status, time zone) and the cursors.
    :param tokens: access tokens, refreshed on expiry.
    :param clients: the vendor client of each provider.
    :param limiter: waits each call out under the vendors' limits.
    :param publish: sends one raw page onto its topic; returns the future of Kafka's ack.
    :param link_changed: awaited with the research_id once a data type was denied in the vault
        (the scheduler publishes the participant's link); None: nobody is told.
    :param max_pages: pages of one data type and day followed at most (``MAX_PAGES_PER_DAY``).
    :param health: whether each vendor is up (``connectors/vendor_health.py``): while one is down,
        calls wait for a probe to get through instead of spending attempts and rate budget.
    """

    def __init__(self, *, retry: SchedulerSettings, vault: TokenVault, tokens: TokenManager,
                 clients: Mapping[Provider, VendorClient], limiter: RateLimiter, publish: Publish,
                 link_changed: LinkChanged | None = None, max_pages: int = MAX_PAGES_PER_DAY,
                 health: VendorHealth | None = None) -> None:
        if max_pages < 1:
            raise ValueError("max_pages must be at least 1")
        self._retry, self._vault, self._tokens = retry, vault, tokens
        self._clients, self._limiter, self._publish = clients, limiter, publish
        self._link_changed, self._max_pages = link_changed, max_pages
        self._health = VendorHealth() if health is None else health
        # request ids: unique per process run and call, cheaper than a uuid4 per page
        self._run_id, self._calls = secrets.token_hex(6), itertools.count()

    async def fetch(self, research_id: str, request: FetchRequest) -> FetchOutcome:
        link = await self._vault.get(research_id)
        if link is None or link.status is not LinkStatus.LINKED or link.provider is not request.provider:
            return self._count(request, FetchOutcome("not_linked"))
        client = self._clients[request.provider]
        tally = _Tally()
        try:
            for data_type in client.expand(request.data_type):
                if data_type in link.denied_data_types:
                    continue  # not granted: asked again only after a new consent
                try:
                    await self._data_type(research_id, client, request, data_type, link.timezone, tally)
                except ScopeMissing:
                    await self._deny(research_id, client.provider, data_type)  # the other types go on
        except AccessRevoked:
            return self._count(request, FetchOutcome("revoked", tally.pages, tally.size))
        except VendorError:
            return self._count(request, FetchOutcome("failed", tally.pages, tally.size))
        return self._count(request, FetchOutcome("done", tally.pages, tally.size))

    async def _data_type(self, research_id: str, client: VendorClient, request: FetchRequest, data_type: str,
                         timezone: str | None, tally: _Tally) -> None:
        """Every day of ``data_type`` asked for (an undated type once, under the last day), then
        the cursor over them; a failed day leaves the cursor just before it."""
        undated = data_type in client.undated_types
        days = [date.fromisoformat(request.end_date)] if undated else _days(request.start_date, request.end_date)
        for day in days:
            try:
                done, got = await self._day(research_id, client, data_type, day, timezone)
            except BaseException as error:
                if not undated:
                    await self._stopped_at(research_id, request, data_type, day, failed=isinstance(error, Exception))
                raise
            tally.pages, tally.size = tally.pages + done, tally.size + got
        await self._advance(research_id, request, data_type, days[-1])

    async def _stopped_at(self, research_id: str, request: FetchRequest, data_type: str, day: date, *,
                          failed: bool) -> None:
        """The request stopped at ``day`` (``failed``: an error, not a cancellation): the cursor
        over the days before it, and for a webhook's failure, held before it (its offset is
        committed whatever came of it, so the next poll must read the day again)."""
        before = day - timedelta(days=1)
        await self._advance(research_id, request, data_type, before)
        if failed and request.reason is FetchReason.WEBHOOK:
            await self._vault.hold_cursor(research_id, data_type, before.isoformat())

    async def _advance(self, research_id: str, request: FetchRequest, data_type: str, through: date) -> None:
        """Move the cursor over the days done, in order (webhook fetches are not part of the sweep).
        A poll's days must join on to the cursor: one held back behind them meanwhile stays held."""
        start = date.fromisoformat(request.start_date)
        if request.reason is FetchReason.WEBHOOK or through < start:
            return
        after = (start - timedelta(days=1)).isoformat() if request.reason is FetchReason.POLL else None
        await self._vault.advance_cursor(research_id, data_type, through.isoformat(), after=after)

    async def _deny(self, research_id: str, provider: Provider, data_type: str) -> None:
        """The vendor refused ``data_type`` for a missing scope: stop asking until a new consent."""
        SCOPE_MISSING.labels(provider.value, data_type).inc()
        await self._vault.deny_data_type(research_id, data_type)
        if self._link_changed is not None:
            await self._link_changed(research_id)

    @staticmethod
    def _count(request: FetchRequest, outcome: FetchOutcome) -> FetchOutcome:
        FETCHES.labels(request.provider.value, request.reason.value, outcome.outcome).inc()
        return outcome

    async def _day(self, research_id: str, client: VendorClient, data_type: str, day: date,
                   timezone: str | None) -> tuple[int, int]:
        """Fetch and publish every page of one day; (pages, bytes) once Kafka acknowledged them all.

        ``VendorRejected`` when the vendor's tokens go round in a loop or past the page cap (after
        the pages so far were acknowledged)."""
        acks, token, size = [], None, 0
        asked: set[str] = set()
        stopped: str | None = None
        while True:
            def call(access: str, t: str | None = token) -> Awaitable[VendorPage]:
                return client.fetch_day(access, data_type, day, page_token=t)

            page = await self._call(research_id, client, data_type, call)
            raw = RawPage(provider=client.provider, data_type=data_type, date=day.isoformat(), body=page.body,
                          detail=page.detail, timezone=timezone,
                          fetched_at=time.time(), request_id=f"{self._run_id}-{next(self._calls)}", origin="api",
                          page_token=page.page_token)
            acks.append(await self._publish(research_id, raw))
            size += len(page.body)
            PAGES.labels(client.provider.value, data_type).inc()
            if not page.next_token:
                break
            if page.next_token in asked:
                stopped = "token_repeated"
                break
            if len(acks) >= self._max_pages:
                stopped = "page_cap"
                break
            token = page.next_token
            asked.add(token)
        await asyncio.gather(*acks)  # a Kafka failure raises here: the cursor stays behind this day
        if stopped is not None:
            PAGING_STOPPED.labels(client.provider.value, data_type, stopped).inc()
            what = "repeated a page token" if stopped == "token_repeated" else f"had more than {self._max_pages} pages"
            raise VendorRejected(f"{client.provider.value} {data_type}: a day {what}; its paging was given up",
                                 provider=client.provider)
        return len(acks), size

    async def _call(self, research_id: str, client: VendorClient, data_type: str,
                    call: Callable[[str], Awaitable[VendorPage]]) -> VendorPage:
        """``call`` with a fresh access token. A 429 goes round again (not an attempt: the vendor
        said when to come back); so does the first 401, after one refresh (whatever its body says:
        Google answers an expired token with a bare UNAUTHENTICATED). A 401 again with the fresh
        token, 5xx, timeouts, and a token endpoint that failed (not refused) are retried with
        jittered backoff; only the token endpoint's refusal of the grant unlinks the participant
        (``TokenManager.refresh``), never a data call's answer. One loop in one coroutine, not
        ``retrying`` around an attempt: every vendor call passes here, and the extra coroutine
        layers cost the scheduler about 6% of its CPU in ``bench connector``."""
        provider, attempt, stale, refreshed = client.provider, 0, None, False
        health = self._health
        while True:
            probe = await health.wait(provider)  # a vendor that is down is waited for, not retried call by call
            await self._limiter.acquire(provider, research_id)
            try:
                access = await (self._tokens.access_token(research_id, provider) if stale is None
                                else self._tokens.refresh(research_id, provider, stale=stale))
            except VendorUnavailable as failed:  # the token endpoint failed (5xx, timeout, no tokens in its answer)
                if not health.failed(provider) or probe:  # down: waiting for it is not one of this call's attempts
                    attempt = await self._spend_attempt(attempt, failed)
                continue
            stale = None
            started = time.perf_counter()
            try:
                page = await call(access)
            except RateLimited as limited:
                health.succeeded(provider)  # every answer but "unavailable" says the vendor is up
                CALLS.labels(provider.value, data_type, "rate_limited").inc()
                self._limiter.block(provider, research_id, limited.retry_after)
                continue
            except TokenExpired as expired:
                health.succeeded(provider)
                CALLS.labels(provider.value, data_type, "token_expired").inc()
                if not refreshed:  # refresh once, then retry at once
                    refreshed, stale = True, access
                    continue
                # refused again with a fresh token: the vendor's trouble, retried like a 5xx
                attempt = await self._spend_attempt(attempt, expired)
                continue
            except AccessRevoked:  # not a data call's answer (error_for): passed on, the link left as it is
                health.succeeded(provider)
                CALLS.labels(provider.value, data_type, "revoked").inc()
                raise
            except ScopeMissing:  # asking again gets the same answer: the caller sets the type aside
                health.succeeded(provider)
                CALLS.labels(provider.value, data_type, "scope_missing").inc()
                raise
            except VendorUnavailable as failed:
                CALLS.labels(provider.value, data_type, "unavailable").inc()
                if not health.failed(provider) or probe:  # down: waiting for it is not one of this call's attempts
                    attempt = await self._spend_attempt(attempt, failed)
                continue
            finally:
                CALL_SECONDS.labels(provider.value).observe(time.perf_counter() - started)
            health.succeeded(provider)
            CALLS.labels(provider.value, data_type, "ok").inc()
            self._limiter.observe(provider, research_id, quota_remaining(page.headers))
            return page


    async def _spend_attempt(self, attempt: int, error: VendorError) -> int:
        """One more of a call's attempts spent on ``error``: raised once they are used up, else
        returned after the jittered backoff."""
        attempt += 1
        if attempt >= self._retry.fetch_max_attempts:
            raise error
        await asyncio.sleep(backoff_delay(attempt, self._retry.retry_base_delay))
        return attempt


def _days(start: str, end: str) -> list[date]:
    first, last = date.fromisoformat(start), date.fromisoformat(end)
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]
