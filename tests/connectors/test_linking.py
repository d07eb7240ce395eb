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
from connectors.vault import TokenVault, open_vault
from connectors.vendors.registry import VENDOR_CLIENTS, aclose_all, build_clients
from models.fetch import FetchReason, FetchRequest
from models.ids import research_id
from models.participants import LinkStatus, ParticipantLink
from models.providers import Provider
from runtime.settings import Settings


class Producer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes | None]] = []

    async def send_and_wait(self, topic: str, value: bytes, key: bytes | None = None) -> None:
        self.sent.append((topic, value, key))

    async def send(self, topic: str, value: bytes, key: bytes | None = None) -> None:
        self.sent.append((topic, value, key))


@dataclass
class Rig:
    settings: Settings
    sim: RunningSimulator
    vault: TokenVault
    session: aiohttp.ClientSession


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    base = Settings.model_validate({"env": "demo", "data_dir": tmp_path, "backfill_days": 3})
    async with running_simulator(base, SimulatorOptions(participants=1, days=2)) as sim, \
            open_vault(base) as vault, aiohttp.ClientSession() as session:
        yield Rig(base.with_overrides(vendor_api_base=sim.url), sim, vault, session)


@pytest.mark.parametrize("provider", sorted(VENDOR_CLIENTS), ids=str)
async def test_a_link_through_the_consent_page(rig: Rig, provider: Provider) -> None:
    participant, producer = rig.sim.world.cohort.participant_ids[0], Producer()
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
    assert account.subscribed and await rig.vault.find_vendor_user(provider, account.user_id) == rid
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
