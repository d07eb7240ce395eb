"""Tokens against the simulator: concurrent refreshes make one call; a revoked grant stops fetching."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import aiohttp
import pytest

from connectors.errors import AccessRevoked
from connectors.fetcher import Fetcher
from connectors.ratelimit import RateLimiter
from connectors.simulator.service import SimulatorOptions
from connectors.tokens import TokenManager
from models.fetch import FetchReason, FetchRequest
from models.ids import research_id
from models.participants import LinkStatus, ParticipantLink
from models.providers import Provider
from runtime.settings import Settings
from tests.connectors.stack import connector_stack
from tests.integration.test_normalize_agent import _drain

pytestmark = pytest.mark.integration


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
