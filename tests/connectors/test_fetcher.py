"""The fetcher with stand-ins for the vault, tokens and the vendor (no server, no Kafka): every
page of every day, what counts as an attempt, when it gives up, and where the cursor stops; a data
type not granted is set aside (denied in the vault, the link announced), the others go on; an
undated type is one snapshot a request; a vendor whose page tokens loop or never end is given up on."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any, Self

import aiohttp
from prometheus_client import REGISTRY

from connectors import fetcher as fetcher_module
from connectors.errors import AccessRevoked, RateLimited, ScopeMissing, TokenExpired, VendorUnavailable
from connectors.fetcher import Fetcher
from connectors.oauth import TokenSet
from connectors.ratelimit import RateLimiter
from connectors.vault import Link
from connectors.vendor_health import VendorHealth
from connectors.vendors.base import Identity, VendorClient, VendorPage
from connectors.vendors.endpoints import Credentials, Endpoints
from models.fetch import FetchReason, FetchRequest
from models.participants import ApiGeneration, LinkStatus
from models.providers import Provider
from models.raw import RawPage
from runtime.settings import Settings

P = Provider.GOOGLE_HEALTH
Script = Callable[[str, str, date, str | None], VendorPage]


class ScriptedClient(VendorClient):
    """A vendor whose ``fetch_day`` answers from a script: (access, data type, day, page token)."""

    provider = P
    data_types = ("steps", "sleep", "paired-devices")
    undated_types = ("paired-devices",)

    def __init__(self, script: Script) -> None:
        self.script, self.calls = script, list[tuple[str, str, date, str | None]]()

    @classmethod
    def build(cls, *, endpoints: Endpoints, credentials: Credentials, timeout: float,
              session: aiohttp.ClientSession) -> Self:
        raise NotImplementedError

    def authorize_url(self, *, state: str, challenge: str, redirect_uri: str) -> str:
        raise NotImplementedError

    async def exchange_code(self, code: str, verifier: str, redirect_uri: str) -> TokenSet:
        raise NotImplementedError

    async def whoami(self, access_token: str) -> Identity:
        raise NotImplementedError

    async def refresh(self, refresh_token: str) -> TokenSet:
        raise NotImplementedError

    async def revoke(self, token: str) -> None:
        raise NotImplementedError

    async def subscribe(self, access_token: str, vendor_user_id: str) -> None:
        raise NotImplementedError

    async def fetch_day(self, access_token: str, data_type: str, day: date, *,
                        page_token: str | None = None) -> VendorPage:
        self.calls.append((access_token, data_type, day, page_token))
        return self.script(access_token, data_type, day, page_token)


class Vault:
    def __init__(self) -> None:
        self.link = Link("R1", P, ApiGeneration.GOOGLE_HEALTH_V4, LinkStatus.LINKED, "Europe/Berlin", 0.0, None)
        self.cursors: list[tuple[str, str]] = []
        self.held: list[tuple[str, str]] = []  # hold_cursor's calls
        self.after: list[str | None] = []  # advance_cursor's ``after`` of each advance

    async def get(self, research_id: str) -> Link | None:
        return self.link

    async def advance_cursor(self, research_id: str, data_type: str, through_date: str, *,
                             after: str | None = None) -> None:
        self.cursors.append((data_type, through_date))
        self.after.append(after)

    async def hold_cursor(self, research_id: str, data_type: str, through_date: str) -> None:
        self.held.append((data_type, through_date))

    async def deny_data_type(self, research_id: str, data_type: str) -> Link | None:
        if data_type not in self.link.denied_data_types:
            self.link = replace(self.link, denied_data_types=(*self.link.denied_data_types, data_type))
        return self.link


class Tokens:
    def __init__(self) -> None:
        self.version, self.revoked_for = 1, list[str]()
        self.refresh_errors: list[Exception] = []  # raised by the next refreshes, in order

    async def access_token(self, research_id: str, provider: Provider) -> str:
        return f"access-{self.version}"

    async def refresh(self, research_id: str, provider: Provider, *, stale: str) -> str:
        if self.refresh_errors:
            raise self.refresh_errors.pop(0)
        self.version += 1
        return f"access-{self.version}"

    async def revoked(self, research_id: str, provider: Provider) -> None:
        self.revoked_for.append(research_id)


def _fetcher(tmp_path: Path, script: Script, announced: list[str] | None = None, *, max_pages: int | None = None,
             health: VendorHealth | None = None, **settings: Any
             ) -> tuple[Fetcher, ScriptedClient, Vault, Tokens, list[RawPage]]:
    client, vault, tokens, published = ScriptedClient(script), Vault(), Tokens(), list[RawPage]()

    async def link_changed(research_id: str) -> None:
        assert announced is not None
        announced.append(research_id)

    async def publish(research_id: str, page: RawPage) -> asyncio.Future[object]:
        published.append(page)
        done: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    config = Settings.model_validate({"data_dir": tmp_path, "retry_base_delay": 0.001, **settings})
    changed = link_changed if announced is not None else None
    cap: dict[str, Any] = {} if max_pages is None else {"max_pages": max_pages}
    fetcher = Fetcher(retry=config.scheduler, vault=vault, tokens=tokens, clients={P: client},  # type: ignore[arg-type]
                      limiter=RateLimiter(), publish=publish, link_changed=changed, health=health, **cap)
    return fetcher, client, vault, tokens, published


def _request(start: str = "2026-11-01", end: str = "2026-11-02", data_type: str = "all") -> FetchRequest:
    return FetchRequest(P, data_type, start, end, FetchReason.POLL, 0.0)


async def test_every_page_of_every_day_is_published_and_the_cursor_follows(tmp_path: Path) -> None:
    def script(access: str, data_type: str, day: date, token: str | None) -> VendorPage:
        following = {None: "p2", "p2": None}[token] if data_type == "steps" else None
        return VendorPage(body=b'{"dataPoints": []}', page_token=token, next_token=following)

    fetcher, client, vault, _, published = _fetcher(tmp_path, script)
    outcome = await fetcher.fetch("R1", _request())
    assert (outcome.outcome, outcome.pages) == ("done", 7)  # steps: 2 days x 2 pages; sleep: 2 x 1; devices: 1
    assert [(p.data_type, p.date, p.page_token) for p in published] == [
        ("steps", "2026-11-01", None), ("steps", "2026-11-01", "p2"), ("steps", "2026-11-02", None),
        ("steps", "2026-11-02", "p2"), ("sleep", "2026-11-01", None), ("sleep", "2026-11-02", None),
        ("paired-devices", "2026-11-02", None)]  # undated: once a request, under its last day
    assert all(p.timezone == "Europe/Berlin" and p.origin == "api" for p in published)
    assert len({p.request_id for p in published}) == 7
    assert vault.cursors == [("steps", "2026-11-02"), ("sleep", "2026-11-02"), ("paired-devices", "2026-11-02")]
    assert [c[1:3] for c in client.calls if c[1] == "paired-devices"] == [("paired-devices", date(2026, 11, 2))]


async def test_429s_and_expired_tokens_are_not_attempts_but_5xx_are(tmp_path: Path) -> None:
    answers: list[Exception | None] = [
        RateLimited("429", provider=P, retry_after=0.01), TokenExpired("401", provider=P, status=401),
        VendorUnavailable("503", provider=P, status=503), VendorUnavailable("502", provider=P, status=502), None]

    def script(access: str, data_type: str, day: date, token: str | None) -> VendorPage:
        answer = answers.pop(0)
        if answer is not None:
            raise answer
        return VendorPage(body=b"{}")

    outcomes = ("ok", "rate_limited", "token_expired", "unavailable", "revoked", "scope_missing")

    def calls() -> dict[str, float]:
        return {o: REGISTRY.get_sample_value("wearables_connector_requests_total", {
            "provider": P.value, "data_type": "steps", "outcome": o}) or 0.0 for o in outcomes}

    before = calls()
    fetcher, client, _, tokens, published = _fetcher(tmp_path, script, fetch_max_attempts=3)
    assert (await fetcher.fetch("R1", _request("2026-11-01", "2026-11-01", "steps"))).outcome == "done"
    assert len(client.calls) == 5 and len(published) == 1
    assert [c[0] for c in client.calls] == ["access-1", "access-1", "access-2", "access-2", "access-2"]
    assert tokens.version == 2  # refreshed once, for the expired token
    after = calls()  # every call counted under its data type, the 429 as rate_limited
    assert {o: after[o] - before[o] for o in outcomes} == {"ok": 1, "rate_limited": 1, "token_expired": 1,
                                                           "unavailable": 2, "revoked": 0, "scope_missing": 0}


def _down_on_november_2(access: str, data_type: str, day: date, token: str | None) -> VendorPage:
    """A vendor that answers 503 for 2026-11-02 and an empty page for any other day."""
    if day == date(2026, 11, 2):
        raise VendorUnavailable("503", provider=P, status=503)
    return VendorPage(body=b"{}")


async def test_it_gives_up_after_max_attempts_and_the_cursor_stays_behind_the_failed_day(tmp_path: Path) -> None:
    fetcher, client, vault, _, _ = _fetcher(tmp_path, _down_on_november_2, fetch_max_attempts=4)
    outcome = await fetcher.fetch("R1", _request("2026-11-01", "2026-11-03", "steps"))
    assert outcome.outcome == "failed" and outcome.pages == 1
    assert [c[2] for c in client.calls] == [date(2026, 11, 1)] + [date(2026, 11, 2)] * 4
    assert vault.cursors == [("steps", "2026-11-01")]


async def test_a_grant_the_token_endpoint_refused_stops_the_fetch(tmp_path: Path) -> None:
    def script(access: str, data_type: str, day: date, token: str | None) -> VendorPage:
        raise TokenExpired("401", provider=P, status=401)

    fetcher, client, vault, tokens, _ = _fetcher(tmp_path, script)
    # the token manager marked the participant revoked (invalid_grant) before raising
    tokens.refresh_errors.append(AccessRevoked("invalid_grant", provider=P, status=400))
    assert (await fetcher.fetch("R1", _request())).outcome == "revoked"
    assert len(client.calls) == 1 and vault.cursors == []
    vault.link = Link("R1", P, ApiGeneration.GOOGLE_HEALTH_V4, LinkStatus.REVOKED, None, 0.0, 1.0)
    assert (await fetcher.fetch("R1", _request())).outcome == "not_linked" and len(client.calls) == 1


async def test_a_data_call_never_unlinks_the_participant(tmp_path: Path) -> None:
    def script(access: str, data_type: str, day: date, token: str | None) -> VendorPage:
        raise AccessRevoked("invalid_token", provider=P, status=401)

    fetcher, _, _, tokens, _ = _fetcher(tmp_path, script)
    assert (await fetcher.fetch("R1", _request())).outcome == "revoked"
    assert tokens.revoked_for == []  # only the token endpoint's refusal revokes (TokenManager.refresh)


async def test_a_401_again_after_the_refresh_is_retried_with_backoff_not_revoked(tmp_path: Path) -> None:
    answers: list[Exception | None] = [TokenExpired("401", provider=P, status=401)] * 3 + [None]

    def script(access: str, data_type: str, day: date, token: str | None) -> VendorPage:
        answer = answers.pop(0)
        if answer is not None:
            raise answer
        return VendorPage(body=b"{}")

    def expired() -> float:
        return REGISTRY.get_sample_value("wearables_connector_requests_total", {
            "provider": P.value, "data_type": "steps", "outcome": "token_expired"}) or 0.0

    before = expired()
    fetcher, client, _, tokens, published = _fetcher(tmp_path, script, fetch_max_attempts=3)
    assert (await fetcher.fetch("R1", _request("2026-11-01", "2026-11-01", "steps"))).outcome == "done"
    assert [c[0] for c in client.calls] == ["access-1", "access-2", "access-2", "access-2"]
    assert tokens.version == 2 and tokens.revoked_for == [] and len(published) == 1  # refreshed once
    assert expired() - before == 3  # every 401 counted

    answers[:] = [TokenExpired("401", provider=P, status=401)] * 10
    fetcher, client, vault, tokens, _ = _fetcher(tmp_path, script, fetch_max_attempts=3)
    assert (await fetcher.fetch("R1", _request("2026-11-01", "2026-11-01", "steps"))).outcome == "failed"
    assert len(client.calls) == 4 and tokens.version == 2 and tokens.revoked_for == []  # 1 refresh, then 3 attempts
    assert vault.link.status is LinkStatus.LINKED


async def test_a_refresh_that_failed_is_retried_with_backoff(tmp_path: Path) -> None:
    answers: list[Exception | None] = [TokenExpired("401", provider=P, status=401), None]

    def script(access: str, data_type: str, day: date, token: str | None) -> VendorPage:
        answer = answers.pop(0)
        if answer is not None:
            raise answer
        return VendorPage(body=b"{}")

    fetcher, client, _, tokens, published = _fetcher(tmp_path, script, fetch_max_attempts=3)
    tokens.refresh_errors += [VendorUnavailable("503", provider=P, status=503), VendorUnavailable("timed out",
                                                                                                  provider=P)]
    assert (await fetcher.fetch("R1", _request("2026-11-01", "2026-11-01", "steps"))).outcome == "done"
    assert [c[0] for c in client.calls] == ["access-1", "access-2"] and len(published) == 1
    assert tokens.revoked_for == []

    answers[:] = [TokenExpired("401", provider=P, status=401)]
    fetcher, client, vault, tokens, _ = _fetcher(tmp_path, script, fetch_max_attempts=3)
    tokens.refresh_errors += [VendorUnavailable("503", provider=P, status=503)] * 3
    assert (await fetcher.fetch("R1", _request("2026-11-01", "2026-11-01", "steps"))).outcome == "failed"
    assert len(client.calls) == 1 and tokens.revoked_for == [] and vault.link.status is LinkStatus.LINKED


async def test_webhook_fetches_leave_the_cursor_alone(tmp_path: Path) -> None:
    fetcher, _, vault, _, published = _fetcher(tmp_path, lambda *_: VendorPage(body=b"{}"))
    request = FetchRequest(P, "sleep", "2026-11-01", "2026-11-01", FetchReason.WEBHOOK, 0.0)
    assert (await fetcher.fetch("R1", request)).outcome == "done" and len(published) == 1
    assert vault.cursors == [] and vault.held == []


async def test_a_webhook_fetch_that_failed_holds_the_cursor_before_the_day_it_failed_on(tmp_path: Path) -> None:
    fetcher, _, vault, _, published = _fetcher(tmp_path, _down_on_november_2, fetch_max_attempts=2)
    request = FetchRequest(P, "steps", "2026-11-01", "2026-11-03", FetchReason.WEBHOOK, 0.0)
    assert (await fetcher.fetch("R1", request)).outcome == "failed" and len(published) == 1
    assert vault.cursors == [] and vault.held == [("steps", "2026-11-01")]


async def test_a_poll_advances_the_cursor_only_if_its_days_join_on_and_a_backfill_regardless(
        tmp_path: Path) -> None:
    fetcher, _, vault, _, _ = _fetcher(tmp_path, lambda *_: VendorPage(body=b"{}"))
    await fetcher.fetch("R1", _request("2026-11-03", "2026-11-05", "steps"))
    await fetcher.fetch("R1", FetchRequest(P, "sleep", "2026-11-03", "2026-11-05", FetchReason.BACKFILL, 0.0))
    # the poll's days must join on to the cursor (a hold meanwhile stays); the backfill makes one
    assert list(zip(vault.cursors, vault.after, strict=True)) == [
        (("steps", "2026-11-05"), "2026-11-02"), (("sleep", "2026-11-05"), None)]


async def test_pages_that_are_empty_but_carry_a_token_are_followed_to_the_last(tmp_path: Path) -> None:
    def script(access: str, data_type: str, day: date, token: str | None) -> VendorPage:
        following = {None: "e1", "e1": "e2", "e2": "p3", "p3": None}[token]
        body = b'{"dataPoints": [{"x": 1}]}' if token == "p3" else b'{"nextPageToken": "x"}'
        return VendorPage(body=body, page_token=token, next_token=following)

    fetcher, _, _, _, published = _fetcher(tmp_path, script)
    assert (await fetcher.fetch("R1", _request("2026-11-01", "2026-11-01", "steps"))).pages == 4
    assert [p.page_token for p in published] == [None, "e1", "e2", "p3"]


async def test_a_type_the_grant_lacks_is_set_aside_denied_and_announced_while_the_others_go_on(tmp_path: Path) -> None:
    def script(access: str, data_type: str, day: date, token: str | None) -> VendorPage:
        if data_type == "sleep":
            raise ScopeMissing("403 ACCESS_TOKEN_SCOPE_INSUFFICIENT", provider=P, status=403)
        return VendorPage(body=b"{}")

    def missing() -> float:
        return REGISTRY.get_sample_value("wearables_connector_scope_missing_total",
                                         {"provider": P.value, "data_type": "sleep"}) or 0.0

    announced: list[str] = []
    before = missing()
    fetcher, client, vault, _, published = _fetcher(tmp_path, script, announced, fetch_max_attempts=5)
    outcome = await fetcher.fetch("R1", _request("2026-11-01", "2026-11-03"))
    assert outcome.outcome == "done" and outcome.pages == 4  # steps: 3 days; devices: 1; no sleep
    assert [c[1] for c in client.calls].count("sleep") == 1  # refused once: neither retried nor asked for the next day
    assert vault.link.denied_data_types == ("sleep",) and announced == ["R1"] and missing() == before + 1
    assert {p.data_type for p in published} == {"steps", "paired-devices"}
    assert ("sleep", "2026-11-03") not in vault.cursors and ("steps", "2026-11-03") in vault.cursors

    client.calls.clear()  # a denied type is not asked for again, by any request, until a new consent
    for request in (_request("2026-11-04", "2026-11-04"), _request("2026-11-04", "2026-11-04", "sleep")):
        assert (await fetcher.fetch("R1", request)).outcome == "done"
    assert "sleep" not in {c[1] for c in client.calls} and announced == ["R1"]


async def test_an_undated_type_that_fails_leaves_no_cursor(tmp_path: Path) -> None:
    def script(access: str, data_type: str, day: date, token: str | None) -> VendorPage:
        raise VendorUnavailable("503", provider=P, status=503)

    fetcher, _, vault, _, _ = _fetcher(tmp_path, script, fetch_max_attempts=1)
    assert (await fetcher.fetch("R1", _request(data_type="paired-devices"))).outcome == "failed"
    assert vault.cursors == []


def _stopped(reason: str) -> float:
    return REGISTRY.get_sample_value("wearables_connector_paging_stopped_total",
                                     {"provider": P.value, "data_type": "steps", "reason": reason}) or 0.0


def _bounded(script: Script, most: int = 250) -> Script:
    """``script``, but a test failure (not a hang) once it was called more than ``most`` times (fewer
    than the 300 a minute the rate limiter lets out before it holds the next call back)."""
    calls = 0

    def bounded(access: str, data_type: str, day: date, token: str | None) -> VendorPage:
        nonlocal calls
        calls += 1
        assert calls <= most, f"still paging after {most} calls"
        return script(access, data_type, day, token)

    return bounded


async def test_a_repeating_page_token_is_not_followed_round_again(tmp_path: Path) -> None:
    def script(access: str, data_type: str, day: date, token: str | None) -> VendorPage:
        return VendorPage(body=b'{"dataPoints": []}', page_token=token, next_token="same-again")

    before = _stopped("token_repeated")
    fetcher, client, vault, _, published = _fetcher(tmp_path, _bounded(script))
    outcome = await fetcher.fetch("R1", _request("2026-11-01", "2026-11-02", "steps"))
    assert outcome.outcome == "failed"  # the vendor's error: the cursor stays before the day
    assert [p.page_token for p in published] == [None, "same-again"] and len(client.calls) == 2
    assert vault.cursors == [] and _stopped("token_repeated") == before + 1


async def test_a_day_past_the_page_cap_is_given_up_as_the_vendors_error(tmp_path: Path) -> None:
    def script(access: str, data_type: str, day: date, token: str | None) -> VendorPage:
        n = int(token or "0")
        if day == date(2026, 11, 1):  # an ordinary day: three pages
            return VendorPage(body=b"{}", page_token=token, next_token=str(n + 1) if n < 2 else None)
        return VendorPage(body=b"{}", page_token=token, next_token=str(n + 1))  # never ends, never repeats

    before = _stopped("page_cap")
    fetcher, client, vault, _, published = _fetcher(tmp_path, _bounded(script), max_pages=5)
    outcome = await fetcher.fetch("R1", _request("2026-11-01", "2026-11-03", "steps"))
    assert outcome.outcome == "failed" and outcome.pages == 3
    assert len(published) == 3 + 5 and [c[2] for c in client.calls].count(date(2026, 11, 3)) == 0
    assert vault.cursors == [("steps", "2026-11-01")] and _stopped("page_cap") == before + 1


async def test_the_default_page_cap_bounds_a_day_that_never_ends(tmp_path: Path) -> None:
    def script(access: str, data_type: str, day: date, token: str | None) -> VendorPage:
        return VendorPage(body=b"{}", page_token=token, next_token=str(int(token or "0") + 1))

    fetcher, _, _, _, published = _fetcher(tmp_path, _bounded(script))
    assert (await fetcher.fetch("R1", _request("2026-11-01", "2026-11-01", "steps"))).outcome == "failed"
    assert len(published) == fetcher_module.MAX_PAGES_PER_DAY == 200


async def test_a_vendor_outage_longer_than_the_attempts_is_waited_out_without_spending_them(tmp_path: Path) -> None:
    back_at = time.monotonic() + 1.0  # the vendor answers 503 to everything for a second

    def script(access: str, data_type: str, day: date, token: str | None) -> VendorPage:
        if time.monotonic() < back_at:
            raise VendorUnavailable("503", provider=P, status=503)
        return VendorPage(body=b"{}")

    # six requests in flight share the process's view of the vendor, as the scheduler's do
    # probes 0.1 s to 0.25 s apart: about 5 in the second, fewer than a request's 8 attempts even if one
    # request makes them all; without the breaker each request spends its 8 within a quarter second
    health = VendorHealth(threshold=3, base_delay=0.1, max_delay=0.25)
    rigs = [_fetcher(tmp_path, script, fetch_max_attempts=8, health=health) for _ in range(6)]
    outcomes = await asyncio.wait_for(asyncio.gather(*(
        fetcher.fetch("R1", _request("2026-11-01", "2026-11-01", "steps")) for fetcher, *_ in rigs)), 10)
    # old code: each request spent its 8 attempts within a quarter second and failed
    assert [o.outcome for o in outcomes] == ["done"] * 6
    assert all(len(published) == 1 for *_, published in rigs) and not health.down(P)
    calls = sum(len(client.calls) for _, client, *_ in rigs)
    assert calls < 6 * 4  # while it was down, one probe at a time rather than every request's 8 tries
