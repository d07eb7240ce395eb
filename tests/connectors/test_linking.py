"""Linking against the simulator (no Kafka: a recording producer): the consent page, the code
exchange, the vault, the participants record, the subscription and the backfill requests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from connectors.errors import VendorRejected
from connectors.linking import give_consent, link_through_consent
from connectors.simulator.service import RunningSimulator, SimulatorOptions, running_simulator
from connectors.vault import Link, TokenVault, open_vault
from connectors.vendors.registry import VENDOR_CLIENTS, aclose_all, build_clients
from models.fetch import FetchReason, FetchRequest
from models.ids import research_id
from models.participants import ApiGeneration, LinkStatus, ParticipantLink
from models.providers import Provider
from runtime.settings import Settings
from tests.builders import RecordingProducer


@dataclass
class Rig:
    settings: Settings
    sim: RunningSimulator
    vault: TokenVault
    session: aiohttp.ClientSession


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    base = Settings.model_validate({"env": "demo", "data_dir": tmp_path, "backfill_days": 3})
    async with running_simulator(base, SimulatorOptions.complete(participants=1, days=2)) as sim, \
            open_vault(base) as vault, aiohttp.ClientSession() as session:
        yield Rig(base.with_overrides(vendor_api_base=sim.url), sim, vault, session)


@pytest.mark.parametrize("provider", sorted(VENDOR_CLIENTS), ids=str)
async def test_a_link_through_the_consent_page(rig: Rig, provider: Provider) -> None:
    participant, producer = rig.sim.world.cohort.participant_ids[0], RecordingProducer()
    clients = build_clients(rig.settings.vendors, rig.session, providers=[provider])
    try:
        link = await link_through_consent(rig.settings, rig.vault, producer, clients[provider],  # type: ignore[arg-type]
                                          rig.session, participant)
    finally:
        await aclose_all(clients)
    rid = research_id(rig.settings.require_secret_key(), participant)
    assert (link.research_id, link.provider, link.status) == (rid, provider, LinkStatus.LINKED)
    assert await rig.vault.tokens(rid) is not None
    account = rig.sim.world.account(provider, participant)
    # Google's default AUTOMATIC policy has no per-user subscription; Fitbit always subscribes
    assert account.subscribed is (provider is Provider.FITBIT)
    assert await rig.vault.find_vendor_user(provider, account.user_id) == rid
    topics = [topic.rsplit(".", 1)[-1] for topic, _, _ in producer.sent]
    assert topics == ["participants"] + ["fetch-requests"] * len(clients[provider].data_types)
    assert ParticipantLink.from_bytes(producer.sent[0][1]).status is LinkStatus.LINKED
    backfill = [FetchRequest.from_bytes(value) for _, value, _ in producer.sent[1:]]
    assert [r.data_type for r in backfill] == list(clients[provider].data_types)
    assert all(r.reason is FetchReason.BACKFILL and r.provider is provider for r in backfill)
    assert {key for _, _, key in producer.sent} == {rid.encode()}


async def test_a_consent_page_that_refuses_is_vendor_rejected(rig: Rig) -> None:
    stranger = rig.settings.with_overrides(google_client_id="not-our-client")
    clients = build_clients(stranger.vendors, rig.session, providers=[Provider.GOOGLE_HEALTH])
    with pytest.raises(VendorRejected, match="consent page answered 400"):
        await give_consent(clients[Provider.GOOGLE_HEALTH], rig.session, "P1", redirect_uri="http://x/cb")


async def _link(rig: Rig, settings: Settings, provider: Provider, participant: str,
                producer: RecordingProducer) -> Link:
    clients = build_clients(settings.vendors, rig.session, providers=[provider])
    try:
        return await link_through_consent(settings, rig.vault, producer, clients[provider],  # type: ignore[arg-type]
                                          rig.session, participant)
    finally:
        await aclose_all(clients)


async def test_the_manual_policy_subscribes_each_google_user(rig: Rig) -> None:
    participant = rig.sim.world.cohort.participant_ids[0]
    manual = rig.settings.with_overrides(google_subscription_policy="manual")
    await _link(rig, manual, Provider.GOOGLE_HEALTH, participant, RecordingProducer())
    assert rig.sim.world.account(Provider.GOOGLE_HEALTH, participant).subscribed


async def test_a_move_from_fitbit_to_google_keeps_the_research_id(rig: Rig) -> None:
    """legacyUserId names the Fitbit account: its research_id carries on, now on Google Health."""
    participant = rig.sim.world.cohort.participant_ids[0]
    fitbit = await _link(rig, rig.settings, Provider.FITBIT, participant, RecordingProducer())
    # another participant id for the same person (a re-enrolment): only the legacy id ties them
    world = rig.sim.world
    google_account = world.account(Provider.GOOGLE_HEALTH, participant)
    assert google_account.legacy_user_id == world.account(Provider.FITBIT, participant).user_id
    producer = RecordingProducer()
    google = await _link(rig, rig.settings.with_overrides(secret_key="another-demo-key-for-this-test-only"),
                         Provider.GOOGLE_HEALTH, participant, producer)
    assert google.research_id == fitbit.research_id
    record = ParticipantLink.from_bytes(producer.sent[0][1])
    assert (record.research_id, record.provider, record.api_generation) == (
        fitbit.research_id, Provider.GOOGLE_HEALTH, ApiGeneration.GOOGLE_HEALTH_V4)
    assert [link.provider for link in await rig.vault.links()] == [Provider.GOOGLE_HEALTH]


async def test_a_withdrawn_fitbit_participant_is_not_collected_again_under_their_old_research_id(rig: Rig) -> None:
    participant = rig.sim.world.cohort.participant_ids[0]
    fitbit = await _link(rig, rig.settings, Provider.FITBIT, participant, RecordingProducer())
    await rig.vault.set_status(fitbit.research_id, LinkStatus.WITHDRAWN)
    google = await _link(rig, rig.settings.with_overrides(secret_key="another-demo-key-for-this-test-only"),
                         Provider.GOOGLE_HEALTH, participant, RecordingProducer())
    assert google.research_id != fitbit.research_id  # a new enrolment, a new research_id
