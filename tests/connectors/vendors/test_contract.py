"""The vendor-client contract, run for every client in ``registry.VENDOR_CLIENTS`` against the
simulator (in-process, on a free loopback port; no Kafka): a new vendor is tested by registering it.

Consent → code exchange → identity → subscription → every data type, every page; single-use
refresh; revoke; and the error mapping the scheduler relies on (429 → ``RateLimited`` with the
vendor's reset, 5xx/timeouts/refused connections → ``VendorUnavailable``, a revoked grant →
``AccessRevoked``, an expired access token → ``TokenExpired``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from connectors.errors import AccessRevoked, RateLimited, TokenExpired, VendorUnavailable
from connectors.linking import give_consent
from connectors.oauth import TokenSet
from connectors.simulator.service import RunningSimulator, SimulatorOptions, running_simulator
from connectors.simulator.world import Account, World
from connectors.vendors.base import VendorClient
from connectors.vendors.registry import VENDOR_CLIENTS, build_clients
from models.providers import Provider
from runtime.broker import free_port
from runtime.settings import Settings


@dataclass
class Vendor:
    """One registered client, linked to nothing yet, and the simulator it talks to."""

    settings: Settings
    sim: RunningSimulator
    session: aiohttp.ClientSession
    client: VendorClient
    participant: str

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

    async def link(self) -> TokenSet:
        """What linking does: the consent page, then the code exchange."""
        redirect = self.settings.vendors.redirect_uri
        consent = await give_consent(self.client, self.session, self.participant, redirect_uri=redirect)
        return await self.client.exchange_code(consent.code, consent.verifier, redirect)


@contextlib.asynccontextmanager
async def _vendor(provider: Provider, tmp_path: Path, *, api_base: str | None = None,
                  **overrides: Any) -> AsyncIterator[Vendor]:
    settings = Settings.model_validate({"env": "demo", "data_dir": tmp_path})
    options = SimulatorOptions(participants=2, days=3, late_share=0.0, duplicate_share=0.0)
    async with running_simulator(settings, options) as sim, aiohttp.ClientSession() as session:
        live = settings.with_overrides(vendor_api_base=api_base or sim.url, **overrides)
        async with build_clients(live.vendors, session, providers=[provider])[provider] as client:
            yield Vendor(live, sim, session, client, sim.world.cohort.participant_ids[0])


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

    identity = await vendor.client.whoami(tokens.access_token)
    assert identity.user_id == vendor.account.user_id
    assert identity.timezone in (vendor.account.timezone, None)  # a vendor that does not say leaves it to the samples
    # Google names the same person's Fitbit account (for moving a legacy link); Fitbit has no such id
    assert identity.legacy_user_id in (vendor.account.legacy_user_id, None)

    assert not vendor.account.subscribed
    await vendor.client.subscribe(tokens.access_token, identity.user_id)
    assert vendor.account.subscribed


async def test_every_data_type_of_every_day_page_by_page(vendor: Vendor) -> None:
    client = vendor.client
    assert client.expand("all") == client.expand("") == client.data_types
    assert all(set(client.expand(t)) <= set(client.data_types) for t in client.data_types)
    access = (await vendor.link()).access_token
    stats = vendor.world.stats
    for data_type in client.data_types:
        served, pages = stats["samples_served"], 0
        for day in vendor.days:
            token = None
            while True:
                page = await client.fetch_day(access, data_type, day, page_token=token)
                assert page.page_token == token  # each page says which token produced it
                assert isinstance(orjson.loads(page.body), dict)
                pages += 1
                if not page.next_token:
                    break
                token = page.next_token
        assert stats["samples_served"] > served, f"no {data_type} came back in {pages} pages"


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
    with pytest.raises(AccessRevoked):
        await vendor.client.whoami(tokens.access_token)
    with pytest.raises(AccessRevoked):
        await vendor.client.fetch_day(tokens.access_token, vendor.client.data_types[0], vendor.days[-1])
    with pytest.raises(AccessRevoked):
        await vendor.client.refresh(tokens.refresh_token)


async def test_a_grant_revoked_at_the_vendor_is_access_revoked(vendor: Vendor) -> None:
    tokens = await vendor.link()
    async with vendor.session.post(f"{vendor.sim.url}/_sim/revoke", json={
            "provider": vendor.client.provider.value, "participant": vendor.participant}) as answer:
        assert answer.status == 200
    with pytest.raises(AccessRevoked):
        await vendor.client.fetch_day(tokens.access_token, vendor.client.data_types[0], vendor.days[-1])
    with pytest.raises(AccessRevoked):
        await vendor.client.refresh(tokens.refresh_token)
    with pytest.raises(AccessRevoked):
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
