"""Linking against the simulator (no Kafka: a recording producer): the consent page, the code
exchange, the vault, the participants record, the subscription and the backfill requests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from prometheus_client import REGISTRY

from connectors.errors import VendorRejected
from connectors.linking import complete_link, give_consent, link_through_consent
from connectors.simulator.service import RunningSimulator, SimulatorOptions, running_simulator
from connectors.vault import AccountLinkedElsewhere, Link, TokenVault, open_vault
from connectors.vendors.base import VendorClient
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


def _revoke_failures(provider: Provider) -> float:
    return REGISTRY.get_sample_value("wearables_vendor_revoke_failures_total", {"provider": provider.value}) or 0.0


async def test_a_second_research_id_linking_the_same_vendor_account_is_refused(rig: Rig) -> None:
    """Audit finding 18: one vendor account, one participant (a webhook names the account)."""
    participant = rig.sim.world.cohort.participant_ids[0]
    first = await _link(rig, rig.settings, Provider.FITBIT, participant, RecordingProducer())
    producer = RecordingProducer()
    other = rig.settings.with_overrides(secret_key="another-demo-key-for-this-test-only")  # another research_id
    with pytest.raises(AccountLinkedElsewhere) as refused:
        await _link(rig, other, Provider.FITBIT, participant, producer)
    assert refused.value.provider is Provider.FITBIT
    assert producer.sent == []
    assert [link.research_id for link in await rig.vault.links()] == [first.research_id]
    assert not rig.sim.world.account(Provider.FITBIT, participant).revoked  # the first link still works
    assert await rig.vault.tokens(first.research_id) is not None


async def test_a_link_that_replaces_another_account_revokes_the_old_grant(rig: Rig) -> None:
    """Audit finding 24: re-linking revoked nothing, and the replaced grant stayed live at the vendor."""
    participant, world = rig.sim.world.cohort.participant_ids[0], rig.sim.world
    clients = build_clients(rig.settings.vendors, rig.session)
    try:
        async def link(provider: Provider) -> Link:
            return await complete_link_through_consent(rig, clients, provider, participant)

        await link(Provider.FITBIT)
        await link(Provider.FITBIT)  # the same account again: its grant is the new link's, kept
        assert not world.account(Provider.FITBIT, participant).revoked
        await link(Provider.GOOGLE_HEALTH)  # the same participant, now at Google: Fitbit's grant ends
        assert world.account(Provider.FITBIT, participant).revoked
        assert not world.account(Provider.GOOGLE_HEALTH, participant).revoked
        assert await rig.vault.tokens(research_id(rig.settings.require_secret_key(), participant)) is not None
    finally:
        await aclose_all(clients)


async def test_a_replaced_grant_at_a_vendor_without_a_client_is_counted_as_not_revoked(rig: Rig) -> None:
    participant = rig.sim.world.cohort.participant_ids[0]
    await _link(rig, rig.settings, Provider.FITBIT, participant, RecordingProducer())
    before = _revoke_failures(Provider.FITBIT)
    await _link(rig, rig.settings, Provider.GOOGLE_HEALTH, participant, RecordingProducer())  # no Fitbit client
    assert _revoke_failures(Provider.FITBIT) == before + 1
    assert not rig.sim.world.account(Provider.FITBIT, participant).revoked


async def complete_link_through_consent(rig: Rig, clients: dict[Provider, VendorClient], provider: Provider,
                                        participant: str) -> Link:
    consent = await give_consent(clients[provider], rig.session, participant,
                                 redirect_uri=rig.settings.vendors.redirect_uri)
    return await complete_link(rig.settings, rig.vault, RecordingProducer(), clients[provider],  # type: ignore[arg-type]
                               participant, consent.code, consent.verifier, clients=clients)
