"""Tokens against the simulator: concurrent refreshes make one call; a revoked grant stops fetching."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from connectors.errors import AccessRevoked, VendorUnavailable
from connectors.fetcher import Fetcher
from connectors.oauth import TokenSet
from connectors.ratelimit import RateLimiter
from connectors.simulator.service import SimulatorOptions, running_simulator
from connectors.tokens import TokenManager
from connectors.vault import TokenVault, open_vault
from connectors.vendors import google_health_spec
from connectors.vendors.base import VendorClient
from connectors.vendors.endpoints import Credentials, Endpoints
from connectors.vendors.fitbit import FitbitWebClient
from connectors.vendors.google_health import GoogleHealthClient
from connectors.vendors.registry import build_clients
from models.fetch import FetchReason, FetchRequest
from models.ids import research_id
from models.participants import LinkStatus, ParticipantLink
from models.providers import Provider
from models.raw import RawPage
from runtime.settings import Settings
from tests.connectors.stack import connector_stack
from tests.integration.test_normalize_agent import _drain

pytestmark = pytest.mark.integration
_CLIENT = Credentials("client-1", "secret-1")


@pytest.mark.parametrize("provider", [Provider.GOOGLE_HEALTH, Provider.FITBIT])
async def test_twenty_concurrent_refreshes_make_one_refresh_call(settings_factory: Callable[..., Settings],
                                                                 provider: Provider) -> None:
    async with connector_stack(settings_factory, SimulatorOptions.complete(participants=1, days=1),
                               run_scheduler=False) as stack:
        participant = stack.sim.world.cohort.participant_ids[0]
        await stack.link(participant, provider)
        rid = research_id(stack.settings.require_secret_key(), participant)
        before = await stack.vault.tokens(rid)
        assert before is not None
        revoked: list[str] = []

        async def on_revoked(rid_: str) -> None:
            revoked.append(rid_)

        manager = TokenManager(stack.vault, {provider: stack.clients[provider]}, on_revoked)
        fresh = await asyncio.gather(*(manager.refresh(rid, provider, stale=before[0].access_token)
                                       for _ in range(20)))

        assert len(set(fresh)) == 1 and fresh[0] != before[0].access_token
        assert stack.sim.world.stats["refreshes"] == 1  # the vendor saw one refresh call
        after = await stack.vault.tokens(rid)
        assert after is not None and after[0].access_token == fresh[0] and after[1] == before[1] + 1
        # the old refresh token was single-use: it is gone at the vendor, the vault holds the new one
        assert before[0].refresh_token not in stack.sim.world.refresh
        assert after[0].refresh_token in stack.sim.world.refresh
        assert not revoked


async def test_revoked_grant_marks_participant_revoked_and_stops_fetching(
        settings_factory: Callable[..., Settings]) -> None:
    async with connector_stack(settings_factory, SimulatorOptions.complete(participants=1, days=2),
                               run_scheduler=False, retry_base_delay=0.01) as stack:
        participant = stack.sim.world.cohort.participant_ids[0]
        await stack.link(participant, Provider.GOOGLE_HEALTH)
        rid = research_id(stack.settings.require_secret_key(), participant)
        published: list[str] = []

        async def publish(_: str, page: object) -> asyncio.Future[object]:
            published.append(str(page))
            done: asyncio.Future[object] = asyncio.get_running_loop().create_future()
            done.set_result(None)
            return done

        revoked_records: list[str] = []

        async def record_revoked(rid_: str) -> None:
            revoked_records.append(rid_)
            link = await stack.vault.get(rid_)
            assert link is not None
            await stack.producer.send_and_wait(stack.settings.topic("participants"),
                                               link.record("k1").to_bytes(), key=rid_.encode())

        client = stack.clients[Provider.GOOGLE_HEALTH]
        tokens = TokenManager(stack.vault, {Provider.GOOGLE_HEALTH: client}, record_revoked)
        fetcher = Fetcher(retry=stack.settings.scheduler, vault=stack.vault, tokens=tokens,
                          clients={Provider.GOOGLE_HEALTH: client}, limiter=RateLimiter(), publish=publish)
        world = stack.sim.world
        day = world.last_day.isoformat()
        request = FetchRequest(Provider.GOOGLE_HEALTH, "steps", day, day, FetchReason.POLL)
        assert (await fetcher.fetch(rid, request)).outcome == "done"
        assert published

        async with aiohttp.ClientSession() as session:
            answer = await session.post(f"{stack.sim.url}/_sim/revoke",
                                        json={"provider": "google_health", "participant": participant})
            assert answer.status == 200
        calls_before = world.stats["requests_google_health"]
        assert (await fetcher.fetch(rid, request)).outcome == "revoked"

        link = await stack.vault.get(rid)
        assert link is not None and link.status is LinkStatus.REVOKED
        assert await stack.vault.tokens(rid) is None  # tokens deleted with the status change
        assert revoked_records == [rid]
        with pytest.raises(AccessRevoked):
            await tokens.access_token(rid, Provider.GOOGLE_HEALTH)
        # fetching has stopped: no further call reaches the vendor
        assert (await fetcher.fetch(rid, request)).outcome == "not_linked"
        assert world.stats["requests_google_health"] == calls_before

        records = [ParticipantLink.from_bytes(v) for v in await _drain(
            stack.settings, "participants", until=lambda vs: len(vs) >= 2)]
        assert [r.status for r in records] == [LinkStatus.LINKED, LinkStatus.REVOKED]
        assert all(r.research_id == rid for r in records)


async def test_a_participant_who_moved_vendor_is_never_sent_with_the_old_vendors_token(
        settings_factory: Callable[..., Settings]) -> None:
    async with connector_stack(settings_factory, SimulatorOptions.complete(participants=1, days=1),
                               run_scheduler=False) as stack:
        participant = stack.sim.world.cohort.participant_ids[0]
        rid = research_id(stack.settings.require_secret_key(), participant)

        async def on_revoked(_: str) -> None:
            raise AssertionError("nothing was revoked")

        manager = TokenManager(stack.vault, stack.clients, on_revoked)
        await stack.link(participant, Provider.FITBIT)
        fitbit = await manager.access_token(rid, Provider.FITBIT)
        await stack.link(participant, Provider.GOOGLE_HEALTH)  # the move: a new link, new tokens
        google = await manager.access_token(rid, Provider.GOOGLE_HEALTH)
        current = await stack.vault.tokens(rid)
        assert current is not None and google == current[0].access_token != fitbit
        identity = await stack.clients[Provider.GOOGLE_HEALTH].whoami(google)  # and Google takes it
        assert identity.user_id == stack.sim.world.account(Provider.GOOGLE_HEALTH, participant).user_id
        # a Fitbit fetch that waited through the move: no token for Fitbit, and its "revocation"
        # leaves the new Google link as it is
        with pytest.raises(AccessRevoked):
            await TokenManager(stack.vault, stack.clients, on_revoked).access_token(rid, Provider.FITBIT)
        await stack.vault.set_status(rid, LinkStatus.REVOKED, provider=Provider.FITBIT)
        link = await stack.vault.get(rid)
        assert link is not None and (link.provider, link.status) == (Provider.GOOGLE_HEALTH, LinkStatus.LINKED)
        assert await stack.vault.tokens(rid, Provider.GOOGLE_HEALTH) is not None


# -- a transient vendor error never unlinks a participant (security audit, finding 3) --------------
# A fake vendor on 127.0.0.1: its data endpoint answers 401 (in the vendor's own shape) to any
# access token but the one its token endpoint hands out; the token endpoint answers as each test says.

_FRESH = "fresh-access"
_DATA_TYPE = {Provider.FITBIT: "sleep", Provider.GOOGLE_HEALTH: "steps"}
# what each answers a data call whose access token it does not take: Google says nothing more
_UNAUTHORIZED = {
    Provider.GOOGLE_HEALTH: {"error": {"code": 401, "status": "UNAUTHENTICATED", "message": (
        "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other "
        "valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.")}},
    Provider.FITBIT: {"errors": [{"errorType": "invalid_token", "message": "Access token invalid: old-access. Visit "
                                  "https://dev.fitbit.com/docs/oauth2 for more information."}], "success": False}}
_INVALID_GRANT = {
    Provider.GOOGLE_HEALTH: {"error": "invalid_grant", "error_description": "Token has been expired or revoked."},
    Provider.FITBIT: {"errors": [{"errorType": "invalid_grant", "message": "Refresh token invalid: refresh-1."}],
                      "success": False}}
_HTML_503 = "<!DOCTYPE html><html><head><title>503 Service Unavailable</title></head><body>Try later</body></html>"
TokenAnswer = Callable[[], Awaitable[web.StreamResponse]]


@dataclass
class FakeRun:
    provider: Provider
    vault: TokenVault
    tokens: TokenManager
    fetcher: Fetcher
    research_id: str
    refreshes: list[dict[str, str]]  # the forms the token endpoint got
    revoked: list[str]  # on_revoked's calls

    def request(self) -> FetchRequest:
        return FetchRequest(self.provider, _DATA_TYPE[self.provider], "2026-11-20", "2026-11-20", FetchReason.POLL)

    async def still_linked_with_the_old_tokens(self) -> bool:
        link, kept = await self.vault.get(self.research_id), await self.vault.tokens(self.research_id)
        return (link is not None and link.status is LinkStatus.LINKED and kept is not None
                and (kept[0].access_token, kept[0].refresh_token) == ("old-access", "refresh-1") and not self.revoked)


def _tokens_answer() -> TokenAnswer:
    async def answer() -> web.StreamResponse:
        return web.json_response({"access_token": _FRESH, "refresh_token": "refresh-2", "expires_in": 3600,
                                  "token_type": "Bearer", "scope": "x"})
    return answer


@contextlib.asynccontextmanager
async def _fake_vendor(provider: Provider, tmp_path: Path, token_answer: TokenAnswer,
                       timeout: float = 5.0) -> AsyncIterator[FakeRun]:
    refreshes: list[dict[str, str]] = []

    async def token(request: web.Request) -> web.StreamResponse:
        refreshes.append({k: str(v) for k, v in (await request.post()).items()})
        return await token_answer()

    async def data(request: web.Request) -> web.StreamResponse:
        if request.headers.get("Authorization") == f"Bearer {_FRESH}":
            return web.json_response({})
        return web.json_response(_UNAUTHORIZED[provider], status=401)

    app = web.Application()
    app.router.add_post("/token", token)
    app.router.add_route("*", "/{tail:.*}", data)
    settings = Settings.model_validate({"env": "demo", "data_dir": tmp_path, "retry_base_delay": 0.001,
                                       "fetch_max_attempts": 2})
    async with (TestServer(app, host="127.0.0.1") as server, aiohttp.ClientSession() as session,
                open_vault(settings) as vault):
        base = str(server.make_url("")).rstrip("/")
        urls = Endpoints(api=base, authorize=base + "/authorize", token=base + "/token", revoke=base + "/revoke")
        client: VendorClient = (
            FitbitWebClient(endpoints=urls, credentials=_CLIENT, timeout=timeout, insecure_transport=True)
            if provider is Provider.FITBIT else
            GoogleHealthClient(endpoints=urls, credentials=_CLIENT, timeout=timeout, session=session))
        rid = research_id(settings.require_secret_key(), "P-fake")
        await vault.link(rid, provider, "user-1", TokenSet("old-access", "refresh-1", time.time() + 3600))
        revoked: list[str] = []

        async def on_revoked(rid_: str) -> None:
            revoked.append(rid_)

        async def publish(_: str, page: RawPage) -> asyncio.Future[object]:
            acked: asyncio.Future[object] = asyncio.get_running_loop().create_future()
            acked.set_result(None)
            return acked

        tokens = TokenManager(vault, {provider: client}, on_revoked)
        fetcher = Fetcher(retry=settings.scheduler, vault=vault, tokens=tokens, clients={provider: client},
                          limiter=RateLimiter(), publish=publish)
        try:
            yield FakeRun(provider, vault, tokens, fetcher, rid, refreshes, revoked)
        finally:
            await client.aclose()


_PROVIDERS = pytest.mark.parametrize("provider", [Provider.GOOGLE_HEALTH, Provider.FITBIT], ids=str)


@_PROVIDERS
async def test_a_data_call_401_refreshes_then_succeeds_and_the_link_stays(tmp_path: Path, provider: Provider) -> None:
    async with _fake_vendor(provider, tmp_path, _tokens_answer()) as run:
        assert (await run.fetcher.fetch(run.research_id, run.request())).outcome == "done"
        assert [form["refresh_token"] for form in run.refreshes] == ["refresh-1"]  # refreshed once
        link, kept = await run.vault.get(run.research_id), await run.vault.tokens(run.research_id)
        assert link is not None and link.status is LinkStatus.LINKED and not run.revoked
        assert kept is not None and (kept[0].access_token, kept[0].refresh_token) == (_FRESH, "refresh-2")


@pytest.mark.parametrize("answer", [
    pytest.param(lambda: web.Response(status=503, text=_HTML_503, content_type="text/html"), id="503-html"),
    pytest.param(lambda: web.Response(status=502, text="", content_type="text/plain"), id="502-empty"),
    pytest.param(lambda: web.Response(status=200, text=_HTML_503, content_type="text/html"), id="200-html"),
    pytest.param(lambda: web.Response(status=400, text="<html>Bad Request</html>", content_type="text/html"),
                 id="400-html"),
])
@_PROVIDERS
async def test_a_token_endpoint_in_trouble_never_unlinks(tmp_path: Path, provider: Provider,
                                                         answer: Callable[[], web.StreamResponse]) -> None:
    async def token_answer() -> web.StreamResponse:
        return answer()

    async with _fake_vendor(provider, tmp_path, token_answer) as run:
        with pytest.raises(VendorUnavailable):
            await run.tokens.refresh(run.research_id, provider, stale="old-access")
        assert await run.still_linked_with_the_old_tokens()
        # through the fetcher: the failed refresh is retried with backoff, then the fetch fails
        assert (await run.fetcher.fetch(run.research_id, run.request())).outcome == "failed"
        assert len(run.refreshes) == 1 + 2  # the direct one, then fetch_max_attempts
        assert await run.still_linked_with_the_old_tokens()


@_PROVIDERS
async def test_a_token_endpoint_slower_than_the_timeout_is_unavailable_within_it(tmp_path: Path,
                                                                                 provider: Provider) -> None:
    release = asyncio.Event()

    async def slow() -> web.StreamResponse:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(release.wait(), 5.0)
        return await _tokens_answer()()

    async with _fake_vendor(provider, tmp_path, slow, timeout=0.5) as run:
        started = time.monotonic()
        try:
            with pytest.raises(VendorUnavailable):
                await run.tokens.refresh(run.research_id, provider, stale="old-access")
        finally:
            took = time.monotonic() - started
            release.set()
        assert took < 2.0, f"the refresh took {took:.1f} s with a 0.5 s timeout"
        assert await run.still_linked_with_the_old_tokens()


@_PROVIDERS
async def test_invalid_grant_from_the_token_endpoint_revokes_and_deletes_the_tokens(tmp_path: Path,
                                                                                    provider: Provider) -> None:
    async def refused() -> web.StreamResponse:
        return web.json_response(_INVALID_GRANT[provider], status=400)

    async with _fake_vendor(provider, tmp_path, refused) as run:
        assert (await run.fetcher.fetch(run.research_id, run.request())).outcome == "revoked"
        assert [form["refresh_token"] for form in run.refreshes] == ["refresh-1"]  # the 401 refreshed first
        link = await run.vault.get(run.research_id)
        assert link is not None and link.status is LinkStatus.REVOKED and run.revoked == [run.research_id]
        assert await run.vault.tokens(run.research_id) is None
        assert (await run.fetcher.fetch(run.research_id, run.request())).outcome == "not_linked"


async def test_google_answers_an_expired_token_unauthenticated_and_a_refresh_mends_it(tmp_path: Path) -> None:
    """Against the simulator: its 401 is Google's real one (nothing says expired), and a fetch
    with an access token it no longer takes refreshes once and goes on; the link stays."""
    provider = Provider.GOOGLE_HEALTH
    settings = Settings.model_validate({"env": "demo", "data_dir": tmp_path, "retry_base_delay": 0.001})
    options = SimulatorOptions.complete(participants=1, days=2, late_share=0.0, duplicate_share=0.0)
    async with running_simulator(settings, options) as sim, aiohttp.ClientSession() as session:
        live = settings.with_overrides(vendor_api_base=sim.url)
        async with build_clients(live.vendors, session, providers=[provider])[provider] as client, \
                open_vault(live) as vault:
            world, participant = sim.world, sim.world.cohort.participant_ids[0]
            account = world.account(provider, participant)
            world.token_lifetime_s = 0.01
            access, refresh, _ = world.issue_tokens(account, " ".join(google_health_spec.SCOPES))
            world.token_lifetime_s = None
            await asyncio.sleep(0.05)
            async with session.get(sim.url + google_health_spec.IDENTITY_PATH,
                                   headers={"Authorization": f"Bearer {access}"}) as answer:
                body = await answer.json()
            assert answer.status == 401 and body["error"]["status"] == "UNAUTHENTICATED" and "expired" not in str(body)

            rid = research_id(live.require_secret_key(), participant)
            # the vault thinks the token good for an hour: only the vendor's 401 says otherwise
            await vault.link(rid, provider, account.user_id, TokenSet(access, refresh, time.time() + 3600))

            async def on_revoked(_: str) -> None:
                raise AssertionError("a 401 from a data call is no revoked grant")

            async def publish(_: str, page: RawPage) -> asyncio.Future[object]:
                acked: asyncio.Future[object] = asyncio.get_running_loop().create_future()
                acked.set_result(None)
                return acked

            fetcher = Fetcher(retry=live.scheduler, vault=vault, tokens=TokenManager(vault, {provider: client},
                                                                                      on_revoked),
                              clients={provider: client}, limiter=RateLimiter(), publish=publish)
            day = world.last_day.isoformat()
            request = FetchRequest(provider, "steps", day, day, FetchReason.POLL)
            assert (await fetcher.fetch(rid, request)).outcome == "done"
            assert world.stats["refreshes"] == 1
            link = await vault.get(rid)
            assert link is not None and link.status is LinkStatus.LINKED
