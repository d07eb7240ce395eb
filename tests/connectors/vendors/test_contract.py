"""The vendor-client contract, run for every client in ``registry.VENDOR_CLIENTS`` against the
simulator (in-process, on a free loopback port; no Kafka): a new vendor is tested by registering it.

Consent (every read scope asked, some unticked) → code exchange → identity → subscription → every
data type, every page; single-use refresh; revoke; and the error mapping the scheduler relies on
(429 → ``RateLimited`` with the vendor's reset, 5xx/timeouts/refused connections →
``VendorUnavailable``, a revoked grant → ``AccessRevoked`` from the token endpoint, a data call's
401 (an expired, revoked or unknown access token) → ``TokenExpired``, a 403 for a scope not granted
→ ``ScopeMissing``). Through the ``Fetcher`` with a real vault: every data type of a request (an
undated one once), empty pages that carry a token followed, 503 and 504 retried, a type the grant
lacks set aside and denied; and for Google, each type's filter accepted, its page size within the
documented maximum, lists newest first.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Collection
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import orjson
import pytest
from aiohttp import web

from connectors.errors import AccessRevoked, RateLimited, ScopeMissing, TokenExpired, VendorUnavailable
from connectors.fetcher import Fetcher
from connectors.linking import Consent, give_consent
from connectors.oauth import TokenSet, pkce_pair
from connectors.ratelimit import RateLimiter
from connectors.simulator import data_calls, google_routes
from connectors.simulator.pages import google_points
from connectors.simulator.service import RunningSimulator, SimulatorOptions, running_simulator
from connectors.simulator.world import Account, World
from connectors.tokens import TokenManager
from connectors.vault import TokenVault, open_vault
from connectors.vendors import fitbit_spec, google_health_spec
from connectors.vendors.base import VendorClient
from connectors.vendors.endpoints import credentials, endpoints
from connectors.vendors.google_health import GoogleHealthClient
from connectors.vendors.registry import VENDOR_CLIENTS, build_clients
from models.fetch import FetchReason, FetchRequest
from models.ids import research_id
from models.providers import Provider
from models.raw import RawPage
from runtime.broker import free_port
from runtime.settings import Settings

SPECS: dict[Provider, ModuleType] = {Provider.FITBIT: fitbit_spec, Provider.GOOGLE_HEALTH: google_health_spec}


async def consent_without(client: VendorClient, session: aiohttp.ClientSession, participant_id: str,
                          unticked: Collection[str], *, redirect_uri: str) -> Consent:
    """``give_consent`` with the ``unticked`` scopes' boxes cleared: open the page, post the boxes
    left ticked (the URL's other fields, the participant, Allow), read the code off the redirect."""
    verifier, challenge = pkce_pair()
    url = client.authorize_url(state="st", challenge=challenge, redirect_uri=redirect_uri)
    async with session.get(url) as page:
        boxes = re.findall(r'<input type="checkbox" name="scope" value="([^"]+)" checked>', await page.text())
    assert set(unticked) <= set(boxes), "every scope asked is a box on the page"
    form = [(k, v[0]) for k, v in parse_qs(urlsplit(url).query).items() if k != "scope"]
    form += [("scope", box) for box in boxes if box not in unticked]
    async with session.post(url.split("?", 1)[0], data=[*form, ("participant", participant_id),
                                                         ("decision", "allow")], allow_redirects=False) as answer:
        returned = parse_qs(urlsplit(answer.headers["Location"]).query)
    return Consent(returned["code"][0], verifier)


@dataclass
class Vendor:
    """One registered client, linked to nothing yet, and the simulator it talks to; ``asked``:
    every request the client sent (method and URL)."""

    settings: Settings
    sim: RunningSimulator
    session: aiohttp.ClientSession
    client: VendorClient
    participant: str
    asked: list[tuple[str, str]] = field(default_factory=list)

    @property
    def world(self) -> World:
        return self.sim.world

    @property
    def account(self) -> Account:
        return self.world.account(self.client.provider, self.participant)

    @property
    def days(self) -> list[date]:
        first, last = self.world.first_day, self.world.last_day
        return [first + timedelta(days=n) for n in range((last - first).days + 1)]

    @property
    def spec(self) -> ModuleType:
        return SPECS[self.client.provider]

    async def link(self, unticked: Collection[str] = ()) -> TokenSet:
        """What linking does: the consent page (``unticked``: the scopes the participant clears),
        then the code exchange."""
        redirect = self.settings.vendors.redirect_uri
        consent = (await consent_without(self.client, self.session, self.participant, unticked, redirect_uri=redirect)
                   if unticked else await give_consent(self.client, self.session, self.participant,
                                                       redirect_uri=redirect))
        return await self.client.exchange_code(consent.code, consent.verifier, redirect)


@contextlib.asynccontextmanager
async def _vendor(provider: Provider, tmp_path: Path, *, api_base: str | None = None,
                  **overrides: Any) -> AsyncIterator[Vendor]:
    settings = Settings.model_validate({"env": "demo", "data_dir": tmp_path})
    options = SimulatorOptions.complete(participants=2, days=3, late_share=0.0, duplicate_share=0.0)
    asked: list[tuple[str, str]] = []

    async def record(session: aiohttp.ClientSession, context: SimpleNamespace,
                     params: aiohttp.TraceRequestStartParams) -> None:
        asked.append((params.method, str(params.url)))

    tracing = aiohttp.TraceConfig()
    tracing.on_request_start.append(record)
    async with running_simulator(settings, options) as sim, aiohttp.ClientSession(trace_configs=[tracing]) as session:
        live = settings.with_overrides(vendor_api_base=api_base or sim.url, **overrides)
        async with build_clients(live.vendors, session, providers=[provider])[provider] as client:
            yield Vendor(live, sim, session, client, sim.world.cohort.participant_ids[0], asked)


def _listed(value: Any) -> int:
    """How many list items a JSON value holds, at any depth: what a page brought, whatever its shape."""
    if isinstance(value, list):
        return len(value) + sum(_listed(item) for item in value)
    return sum(_listed(item) for item in value.values()) if isinstance(value, dict) else 0


@pytest.fixture(params=sorted(VENDOR_CLIENTS), ids=str)
def provider(request: pytest.FixtureRequest) -> Provider:
    return Provider(request.param)


@pytest.fixture
async def vendor(provider: Provider, tmp_path: Path) -> AsyncIterator[Vendor]:
    async with _vendor(provider, tmp_path) as running:
        yield running


async def test_consent_exchange_identity_and_subscription(vendor: Vendor) -> None:
    tokens = await vendor.link()
    assert tokens.access_token and tokens.refresh_token and not tokens.expires_within(60)
    assert vendor.client.granted(tokens.scope) == vendor.client.data_types  # everything ticked: everything read

    identity = await vendor.client.whoami(tokens.access_token)
    assert identity.user_id == vendor.account.user_id
    assert identity.timezone == vendor.account.timezone  # Fitbit: the profile; Google: the user's settings
    # Google names the same person's Fitbit account (for moving a legacy link); Fitbit has no such id
    assert identity.legacy_user_id in (vendor.account.legacy_user_id, None)

    assert not vendor.account.subscribed
    await vendor.client.subscribe(tokens.access_token, identity.user_id)
    assert vendor.account.subscribed


async def test_the_consent_url_asks_for_the_scope_of_every_data_type(vendor: Vendor) -> None:
    url = vendor.client.authorize_url(state="st", challenge="c" * 43, redirect_uri=vendor.settings.vendors.redirect_uri)
    asked = parse_qs(urlsplit(url).query)["scope"][0].split()
    needed = {vendor.spec.SCOPE_OF[t] for t in vendor.client.data_types}
    assert asked == list(vendor.spec.SCOPES) and set(asked) >= needed
    assert len(asked) == len(set(asked))  # the union: a scope once, however many types it covers
    if vendor.client.provider is Provider.GOOGLE_HEALTH:  # sleep has a scope of its own
        assert "https://www.googleapis.com/auth/googlehealth.sleep.readonly" in asked


async def test_every_data_type_of_every_day_page_by_page(vendor: Vendor) -> None:
    client = vendor.client
    assert client.expand("all") == client.expand("") == client.data_types
    assert all(set(client.expand(t)) <= set(client.data_types) for t in client.data_types)
    assert set(client.undated_types) <= set(client.data_types)
    access = (await vendor.link()).access_token
    for data_type in client.data_types:
        listed, pages = 0, 0
        for day in vendor.days[-1:] if data_type in client.undated_types else vendor.days:
            token = None
            while True:
                page = await client.fetch_day(access, data_type, day, page_token=token)
                assert page.page_token == token  # each page says which token produced it
                listed, pages = listed + _listed(orjson.loads(page.body)), pages + 1
                if not page.next_token:
                    break
                token = page.next_token
        assert listed, f"no {data_type} came back in {pages} pages"


async def test_a_scope_left_unticked_is_not_granted_and_its_calls_are_scope_missing(vendor: Vendor) -> None:
    sleep_scope = vendor.spec.SCOPE_OF["sleep"]
    tokens = await vendor.link(unticked=[sleep_scope])
    assert sleep_scope not in tokens.scope.split() and tokens.scope  # the token response says what was granted
    granted = vendor.client.granted(tokens.scope)
    assert set(granted) == {t for t in vendor.client.data_types if vendor.spec.SCOPE_OF[t] != sleep_scope}
    with pytest.raises(ScopeMissing) as missing:
        await vendor.client.fetch_day(tokens.access_token, "sleep", vendor.days[-1])
    assert missing.value.status == 403 and missing.value.provider is vendor.client.provider
    for data_type in granted:  # the rest of the grant still reads
        assert (await vendor.client.fetch_day(tokens.access_token, data_type, vendor.days[-1])).body
    fresh = await vendor.client.refresh(tokens.refresh_token)  # a refresh grants no more than the consent did
    assert vendor.client.granted(fresh.scope) == granted


async def test_a_refresh_token_is_single_use(vendor: Vendor) -> None:
    first = await vendor.link()
    fresh = await vendor.client.refresh(first.refresh_token)
    assert fresh.access_token != first.access_token and fresh.refresh_token != first.refresh_token
    assert (await vendor.client.whoami(fresh.access_token)).user_id == vendor.account.user_id
    with pytest.raises(AccessRevoked):
        await vendor.client.refresh(first.refresh_token)  # consumed by the first refresh


async def test_revoke_ends_the_grant(vendor: Vendor) -> None:
    tokens = await vendor.link()
    await vendor.client.revoke(tokens.refresh_token)
    assert vendor.account.revoked
    # a data call's 401 only says "refresh" (Google's says no more); the token endpoint says revoked
    with pytest.raises(TokenExpired):
        await vendor.client.whoami(tokens.access_token)
    with pytest.raises(TokenExpired):
        await vendor.client.fetch_day(tokens.access_token, vendor.client.data_types[0], vendor.days[-1])
    with pytest.raises(AccessRevoked):
        await vendor.client.refresh(tokens.refresh_token)


async def test_a_grant_revoked_at_the_vendor_is_access_revoked(vendor: Vendor) -> None:
    tokens = await vendor.link()
    async with vendor.session.post(f"{vendor.sim.url}/_sim/revoke", json={
            "provider": vendor.client.provider.value, "participant": vendor.participant}) as answer:
        assert answer.status == 200
    with pytest.raises(TokenExpired):  # a data call's 401: refresh, and the refresh says revoked
        await vendor.client.fetch_day(tokens.access_token, vendor.client.data_types[0], vendor.days[-1])
    with pytest.raises(AccessRevoked):
        await vendor.client.refresh(tokens.refresh_token)
    with pytest.raises(TokenExpired):
        await vendor.client.whoami("never-issued")


async def test_an_expired_access_token_is_token_expired_until_refreshed(vendor: Vendor) -> None:
    vendor.world.token_lifetime_s = 0.05
    tokens = await vendor.link()
    vendor.world.token_lifetime_s = None
    await asyncio.sleep(0.1)
    data_type, day = vendor.client.data_types[0], vendor.days[-1]
    with pytest.raises(TokenExpired):
        await vendor.client.fetch_day(tokens.access_token, data_type, day)
    fresh = await vendor.client.refresh(tokens.refresh_token)
    assert (await vendor.client.fetch_day(fresh.access_token, data_type, day)).body


async def test_429_is_rate_limited_with_the_reset_the_vendor_gave(vendor: Vendor,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    tokens = await vendor.link()
    # over the limit, 41.2 s before the vendor's window resets (whatever the vendor's limits are)
    monkeypatch.setattr(vendor.world.quota, "take", lambda *_: (False, 150, 41.2, 0))
    with pytest.raises(RateLimited) as limited:
        await vendor.client.fetch_day(tokens.access_token, vendor.client.data_types[0], vendor.days[-1])
    assert limited.value.retry_after == 42.0 and limited.value.status == 429


async def test_server_errors_are_vendor_unavailable(vendor: Vendor) -> None:
    tokens = await vendor.link()
    vendor.world.faults.error_rate = 1.0
    for call in (lambda: vendor.client.whoami(tokens.access_token),
                 lambda: vendor.client.fetch_day(tokens.access_token, vendor.client.data_types[0], vendor.days[-1])):
        with pytest.raises(VendorUnavailable) as unavailable:
            await call()
        assert unavailable.value.status in (500, 502, 503)


async def test_a_hung_call_is_vendor_unavailable_after_the_timeout(provider: Provider, tmp_path: Path) -> None:
    async with _vendor(provider, tmp_path, http_timeout=0.3) as vendor:
        tokens = await vendor.link()
        vendor.world.faults.timeout_rate, vendor.world.faults.hang_s = 1.0, 1.0
        with pytest.raises(VendorUnavailable) as unavailable:
            await vendor.client.fetch_day(tokens.access_token, vendor.client.data_types[0], vendor.days[-1])
        assert unavailable.value.status is None  # no answer came


async def test_a_refused_connection_is_vendor_unavailable_on_every_call(provider: Provider, tmp_path: Path) -> None:
    async with _vendor(provider, tmp_path, api_base=f"http://127.0.0.1:{free_port()}") as vendor:
        client, day = vendor.client, vendor.days[-1]
        for call in (lambda: client.exchange_code("code", "verifier", vendor.settings.vendors.redirect_uri),
                     lambda: client.whoami("token"), lambda: client.refresh("token"), lambda: client.revoke("token"),
                     lambda: client.subscribe("token", "user"),
                     lambda: client.fetch_day("token", client.data_types[0], day)):
            with pytest.raises(VendorUnavailable) as unavailable:
                await call()
            assert unavailable.value.provider is provider and unavailable.value.status is None


# --------------------------------------------------------------------------- through the fetcher
@dataclass
class Fetching:
    vendor: Vendor
    vault: TokenVault
    fetcher: Fetcher
    research_id: str
    published: list[RawPage]
    announced: list[str]

    def request(self, data_type: str = "all", days: list[date] | None = None) -> FetchRequest:
        days = days or self.vendor.days
        return FetchRequest(self.vendor.client.provider, data_type, days[0].isoformat(), days[-1].isoformat(),
                            FetchReason.POLL)


@contextlib.asynccontextmanager
async def _fetching(vendor: Vendor, unticked: Collection[str] = (), *, told: bool = True) -> AsyncIterator[Fetching]:
    """A participant linked into a real vault as linking does (``told=False``: the link does not
    know the types the grant lacks, as a link from before it kept them) and a Fetcher for them."""
    client, published, announced = vendor.client, list[RawPage](), list[str]()
    async with open_vault(vendor.settings) as vault:
        tokens = await vendor.link(unticked)
        identity = await client.whoami(tokens.access_token)
        rid = research_id(vendor.settings.require_secret_key(), vendor.participant)
        denied = tuple(t for t in client.data_types if t not in client.granted(tokens.scope)) if told else ()
        await vault.link(rid, client.provider, identity.user_id, tokens, timezone=identity.timezone, denied=denied)

        async def publish(key: str, page: RawPage) -> asyncio.Future[object]:
            published.append(page)
            acked: asyncio.Future[object] = asyncio.get_running_loop().create_future()
            acked.set_result(None)
            return acked

        async def link_changed(key: str) -> None:
            announced.append(key)

        async def revoked(key: str) -> None:
            raise AssertionError("the grant is not revoked")

        fetcher = Fetcher(retry=vendor.settings.scheduler, vault=vault,
                          tokens=TokenManager(vault, {client.provider: client}, on_revoked=revoked),
                          clients={client.provider: client}, limiter=RateLimiter(), publish=publish,
                          link_changed=link_changed)
        yield Fetching(vendor, vault, fetcher, rid, published, announced)


async def test_a_request_fetches_every_data_type_and_an_undated_one_once(vendor: Vendor) -> None:
    async with _fetching(vendor) as run:
        outcome = await run.fetcher.fetch(run.research_id, run.request())
        assert outcome.outcome == "done"
        client, last = vendor.client, vendor.days[-1].isoformat()
        assert {p.data_type for p in run.published} == set(client.data_types)
        for data_type in client.undated_types:
            assert [p.date for p in run.published if p.data_type == data_type] == [last]
        dated = {(p.data_type, p.date) for p in run.published if p.data_type not in client.undated_types}
        assert dated == {(t, d.isoformat()) for t in client.data_types if t not in client.undated_types
                         for d in vendor.days}
        cursors = [await run.vault.cursor(run.research_id, t) for t in client.data_types]
        assert cursors == [last] * len(client.data_types)


async def test_a_type_the_grant_lacks_is_refused_once_then_denied_and_the_others_flow(vendor: Vendor) -> None:
    sleep_scope = vendor.spec.SCOPE_OF["sleep"]
    async with _fetching(vendor, unticked=[sleep_scope], told=False) as run:
        assert (await run.fetcher.fetch(run.research_id, run.request())).outcome == "done"
        refusals = vendor.world.stats[f"scope_refusals_{vendor.client.provider.value}"]
        assert refusals == 1  # one 403, never retried
        link = await run.vault.get(run.research_id)
        assert link is not None and link.denied_data_types == ("sleep",) and run.announced == [run.research_id]
        assert "sleep" not in {p.data_type for p in run.published}
        assert {p.data_type for p in run.published} == set(vendor.client.data_types) - {"sleep"}
        run.published.clear()
        assert (await run.fetcher.fetch(run.research_id, run.request("sleep"))).outcome == "done"
        assert (await run.fetcher.fetch(run.research_id, run.request())).outcome == "done"
        assert vendor.world.stats[f"scope_refusals_{vendor.client.provider.value}"] == refusals  # not asked again
        assert "sleep" not in {p.data_type for p in run.published} and run.published


@pytest.mark.parametrize(("status", "name"), [(503, "UNAVAILABLE"), (504, "DEADLINE_EXCEEDED")])
async def test_503_and_504_are_retried(provider: Provider, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       status: int, name: str) -> None:
    answers = [status, status]  # two in a row, then the page

    async def transient(world: World) -> web.Response | None:
        if not answers:
            return None
        return web.json_response({"error": {"code": answers.pop(), "status": name, "message": name}}, status=status)

    async with _vendor(provider, tmp_path, retry_base_delay=0.01) as vendor, _fetching(vendor) as run:
        monkeypatch.setattr(data_calls, "injected_fault", transient)
        day = vendor.days[-1]
        outcome = await run.fetcher.fetch(run.research_id, run.request(vendor.client.data_types[0], [day]))
        assert outcome.outcome == "done" and outcome.pages >= 1 and answers == []
        assert {p.data_type for p in run.published} == {vendor.client.data_types[0]}


# --------------------------------------------------------------------------- Google Health's list calls
@pytest.fixture
async def google(tmp_path: Path) -> AsyncIterator[Vendor]:
    async with _vendor(Provider.GOOGLE_HEALTH, tmp_path) as running:
        yield running


def _lists(vendor: Vendor) -> list[tuple[str, dict[str, str]]]:
    """The data type and query of every list call the client made."""
    calls = []
    for method, url in vendor.asked:
        parts = urlsplit(url)
        match = re.fullmatch(r"/v4/users/me/dataTypes/([a-z-]+)/dataPoints", parts.path)
        if method == "GET" and match:
            calls.append((match.group(1), {k: v[0] for k, v in parse_qs(parts.query).items()}))
    return calls


async def test_google_filters_each_type_as_it_takes_within_its_page_size(google: Vendor) -> None:
    access = (await google.link()).access_token
    for data_type in google_health_spec.DATA_TYPES:
        await google.client.fetch_day(access, data_type, google.days[-1])  # accepted, or it would raise
    for data_type, query in _lists(google):
        member = query["filter"].split(" ", 1)[0].removeprefix(google_health_spec.filter_name(data_type) + ".")
        assert member in google_health_spec.FILTER_MEMBERS[google_health_spec.RECORD_KINDS[data_type]]
        assert int(query["page_size"]) <= google_health_spec.PAGE_SIZES[data_type][1]
    assert {t for t, _ in _lists(google)} == set(google_health_spec.DATA_TYPES)
    assert next(q for t, q in _lists(google) if t == "sleep")["page_size"] == "25"


async def test_google_pages_come_newest_first_and_together_are_the_day(google: Vendor) -> None:
    vendors, provider = google.settings.vendors, Provider.GOOGLE_HEALTH
    client = GoogleHealthClient(endpoints=endpoints(vendors, provider), credentials=credentials(vendors, provider),
                                timeout=10.0, session=google.session, page_size=300)  # small pages
    access = (await google.link()).access_token
    day, times, token = google.days[-1], list[str](), None
    while True:
        page = await client.fetch_day(access, "heart-rate", day, page_token=token)
        times += [p["heartRate"]["sampleTime"]["physicalTime"] for p in orjson.loads(page.body).get("dataPoints", [])]
        token = page.next_token
        if not token:
            break
    assert times == sorted(times, reverse=True) and len(times) > 300  # several pages, newest first
    truth = {f"{datetime.fromtimestamp(p[0], UTC):%Y-%m-%dT%H:%M:%SZ}" for p in _utc_day(google, "heart-rate", day)}
    assert set(times) == truth


async def test_google_empty_pages_with_a_token_are_followed(google: Vendor, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(google_routes, "_EMPTY_FIRST_SHARE", 1.0)  # every first page: empty, with a token
    async with _fetching(google) as run:
        day = google.days[-1]
        assert (await run.fetcher.fetch(run.research_id, run.request("steps", [day]))).outcome == "done"
        bodies = [orjson.loads(p.body) for p in run.published]
        assert len(bodies) == 2 and "dataPoints" not in bodies[0] and bodies[0]["nextPageToken"]
        served = sum(int(p["steps"]["count"]) for p in bodies[1]["dataPoints"])
        assert served == sum(p[1] for p in _utc_day(google, "steps", day)) > 0


def _utc_day(vendor: Vendor, data_type: str, day: date) -> list[tuple[int, int, int]]:
    """What the simulator holds of ``data_type`` in the UTC day (epoch, value, offset)."""
    start = datetime.combine(day, datetime.min.time(), UTC)
    return google_points(vendor.world, vendor.account, data_type, start.timestamp(),
                         (start + timedelta(days=1)).timestamp())


async def test_google_without_the_settings_scope_leaves_the_zone_unknown(vendor: Vendor) -> None:
    """The zone comes from the user's settings; a participant who unticks them still links."""
    if vendor.client.provider is not Provider.GOOGLE_HEALTH:
        pytest.skip("Fitbit's zone comes from the profile, which linking needs")
    tokens = await vendor.link(unticked=[vendor.spec.SETTINGS_SCOPE])
    identity = await vendor.client.whoami(tokens.access_token)
    assert (identity.user_id, identity.timezone) == (vendor.account.user_id, None)
