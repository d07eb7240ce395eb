"""Unlink, withdraw and purge (connectors/withdrawal.py) with a real vault on SQLite, a recording
producer and fake vendor clients."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client import REGISTRY

from connectors.errors import VendorError
from connectors.oauth import TokenSet
from connectors.vault import TokenVault, open_vault
from connectors.withdrawal import unlink, withdraw
from models.audit import Action, Actor, AuditRecord, subject_of
from models.participants import LinkStatus, ParticipantLink
from models.providers import Provider
from models.purge import PurgeMarker, is_purge_marker
from runtime.settings import Settings
from tests.builders import RecordingProducer

RID = "R00000001"
VENDOR_USER = "vendor-user"
ACCESS, REFRESH = "access-token-abc", "refresh-token-xyz"




class Vendor:
    def __init__(self, error: BaseException | None = None) -> None:
        self.revoked: list[str] = []
        self.error = error

    async def revoke(self, token: str) -> None:
        self.revoked.append(token)
        if self.error is not None:
            raise self.error


@dataclass
class Rig:
    settings: Settings
    vault: TokenVault
    producer: RecordingProducer


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    settings = Settings(env="demo", data_dir=tmp_path)
    async with open_vault(settings) as vault:
        yield Rig(settings, vault, RecordingProducer())


async def _link(vault: TokenVault, rid: str = RID, vendor_user: str = VENDOR_USER) -> None:
    await vault.link(rid, Provider.GOOGLE_HEALTH, vendor_user, TokenSet(ACCESS, REFRESH, time.time() + 3600))


def _clients(vendor: Vendor) -> Any:
    return {Provider.GOOGLE_HEALTH: vendor}


def _failures() -> float:
    return REGISTRY.get_sample_value("wearables_vendor_revoke_failures_total",
                                     {"provider": Provider.GOOGLE_HEALTH.value}) or 0.0


def _topics(rig: Rig) -> list[str]:
    return [topic for topic, _, _ in rig.producer.sent]


def _audit(rig: Rig) -> list[tuple[AuditRecord, bytes | None]]:
    return [(AuditRecord.from_bytes(value), key) for topic, value, key in rig.producer.sent
            if topic == rig.settings.topic("audit") and value is not None]


async def test_unlink_revokes_at_the_vendor_deletes_tokens_and_publishes_revoked(rig: Rig) -> None:
    await _link(rig.vault)
    vendor = Vendor()
    assert await unlink(rig.settings, rig.vault, rig.producer, _clients(vendor), RID) is True  # type: ignore[arg-type]
    assert vendor.revoked == [REFRESH]
    link = await rig.vault.get(RID)
    assert link is not None and link.status is LinkStatus.REVOKED and link.revoked_at is not None
    assert await rig.vault.tokens(RID) is None
    [(topic, value, key)] = rig.producer.sent
    assert topic == rig.settings.topic("participants") and key == RID.encode()
    assert value is not None
    record = ParticipantLink.from_bytes(value)
    assert record.research_id == RID and record.status is LinkStatus.REVOKED
    assert record.key_id == rig.settings.secret_key_id

    rig.producer.sent.clear()
    assert await unlink(rig.settings, rig.vault, rig.producer, _clients(vendor), RID) is False  # type: ignore[arg-type]
    assert rig.producer.sent == []
    assert vendor.revoked == [REFRESH]


async def test_unlink_of_an_unknown_research_id_is_false_and_publishes_nothing(rig: Rig) -> None:
    vendor = Vendor()
    assert await unlink(rig.settings, rig.vault, rig.producer, _clients(vendor), "R-nobody") is False  # type: ignore[arg-type]
    assert rig.producer.sent == [] and vendor.revoked == []


@pytest.mark.parametrize("error", [VendorError("revocation refused", provider=Provider.GOOGLE_HEALTH, status=500),
                                   OSError("connection reset"), TimeoutError()])
async def test_a_failed_revocation_still_deletes_the_tokens_and_is_counted(rig: Rig, error: BaseException) -> None:
    await _link(rig.vault)
    vendor = Vendor(error)
    before = _failures()
    assert await unlink(rig.settings, rig.vault, rig.producer, _clients(vendor), RID) is True  # type: ignore[arg-type]
    assert vendor.revoked == [REFRESH]
    assert _failures() == before + 1
    assert await rig.vault.tokens(RID) is None
    link = await rig.vault.get(RID)
    assert link is not None and link.status is LinkStatus.REVOKED
    [(topic, value, _)] = rig.producer.sent
    assert topic == rig.settings.topic("participants") and value is not None
    assert ParticipantLink.from_bytes(value).status is LinkStatus.REVOKED


async def test_a_failed_revocation_in_withdraw_is_reported_as_not_revoked(rig: Rig) -> None:
    await _link(rig.vault)
    before = _failures()
    report = await withdraw(rig.settings, rig.vault, rig.producer,  # type: ignore[arg-type]
                            _clients(Vendor(OSError("down"))), RID, actor=Actor.STAFF, purge=False)
    assert report.was_linked is True and report.revoked_at_vendor is False
    assert _failures() == before + 1
    assert await rig.vault.tokens(RID) is None


async def test_withdraw_without_purge_sets_withdrawn_and_audits_withdraw_only(rig: Rig) -> None:
    await _link(rig.vault)
    vendor = Vendor()
    report = await withdraw(rig.settings, rig.vault, rig.producer, _clients(vendor), RID,  # type: ignore[arg-type]
                            actor=Actor.PARTICIPANT, purge=False)
    assert (report.was_linked, report.revoked_at_vendor, report.purged, report.daily_days) == (True, True, False, 0)
    assert vendor.revoked == [REFRESH]
    link = await rig.vault.get(RID)
    assert link is not None and link.status is LinkStatus.WITHDRAWN
    assert await rig.vault.tokens(RID) is None
    assert _topics(rig) == [rig.settings.topic("participants"), rig.settings.topic("audit")]
    participants = rig.producer.sent[0]
    assert participants[1] is not None and ParticipantLink.from_bytes(participants[1]).status is LinkStatus.WITHDRAWN
    [(audit, key)] = _audit(rig)
    subject = subject_of(rig.settings.require_secret_key(), RID)
    assert (audit.subject, audit.action, audit.actor, audit.component) == (
        subject, Action.WITHDRAW, Actor.PARTICIPANT, "portal")
    assert audit.removed == {"tokens": 1, "purge_requested": 0}
    assert key == subject.encode()
    assert not any(is_purge_marker(value) for _, value, _ in rig.producer.sent)


async def test_withdraw_with_purge_publishes_everything_in_order(rig: Rig) -> None:
    await _link(rig.vault)
    vendor = Vendor()
    settings = rig.settings
    report = await withdraw(settings, rig.vault, rig.producer, _clients(vendor), RID,  # type: ignore[arg-type]
                            actor=Actor.STAFF, purge=True, dates=("2026-11-01",))
    assert (report.was_linked, report.revoked_at_vendor, report.purged, report.daily_days) == (True, True, True, 1)
    assert vendor.revoked == [REFRESH]
    subject = subject_of(settings.require_secret_key(), RID)
    sent = rig.producer.sent
    assert _topics(rig) == [settings.topic("participants"), settings.topic("audit"), settings.topic("audit"),
                            settings.topic("samples"), settings.topic("participants"), settings.topic("audit")]

    assert sent[0][1] is not None and sent[0][2] == RID.encode()
    assert ParticipantLink.from_bytes(sent[0][1]).status is LinkStatus.WITHDRAWN
    withdraw_record, purge_record, removed_record = (record for record, _ in _audit(rig))
    assert (withdraw_record.action, withdraw_record.actor, withdraw_record.component) == (
        Action.WITHDRAW, Actor.STAFF, "portal")
    assert withdraw_record.removed == {"tokens": 1, "purge_requested": 1}
    assert (purge_record.action, purge_record.actor, purge_record.component) == (Action.PURGE, Actor.STAFF, "portal")
    assert sent[3][1] is not None and is_purge_marker(sent[3][1]) and sent[3][2] == RID.encode()
    assert PurgeMarker.from_bytes(sent[3][1]) == PurgeMarker(RID, ("2026-11-01",))
    assert sent[4] == (settings.topic("participants"), None, RID.encode())  # the tombstone
    assert (removed_record.action, removed_record.actor, removed_record.component) == (
        Action.REMOVED, Actor.SYSTEM, "vault")
    assert removed_record.removed == {"vault_rows": 1, "participants_tombstones": 1}

    assert all(record.subject == subject for record, _ in _audit(rig))
    assert [key for _, key in _audit(rig)] == [subject.encode()] * 3
    assert await rig.vault.get(RID) is None
    assert await rig.vault.tokens(RID) is None
    for _, value, key in sent:
        for secret in (VENDOR_USER, ACCESS, REFRESH):
            assert secret.encode() not in (value or b"") and secret.encode() not in (key or b"")
    for _, value, _ in sent[1:3] + sent[5:]:  # the audit records name nobody in clear
        assert RID.encode() not in (value or b"")


async def test_withdraw_with_purge_of_an_unknown_research_id_still_purges_the_pipeline(rig: Rig) -> None:
    settings = rig.settings
    vendor = Vendor()
    report = await withdraw(settings, rig.vault, rig.producer, _clients(vendor), "R-unknown",  # type: ignore[arg-type]
                            actor=Actor.STAFF, purge=True)
    assert (report.was_linked, report.revoked_at_vendor, report.purged, report.daily_days) == (False, False, True, 0)
    assert vendor.revoked == []
    sent = rig.producer.sent
    assert _topics(rig) == [settings.topic("audit"), settings.topic("audit"), settings.topic("samples"),
                            settings.topic("participants"), settings.topic("audit")]
    assert sent[2][1] is not None and PurgeMarker.from_bytes(sent[2][1]) == PurgeMarker("R-unknown", ())
    assert sent[2][2] == b"R-unknown"
    assert sent[3] == (settings.topic("participants"), None, b"R-unknown")
    records = [record for record, _ in _audit(rig)]
    assert [r.action for r in records] == [Action.WITHDRAW, Action.PURGE, Action.REMOVED]
    assert records[0].removed == {"tokens": 0, "purge_requested": 1}
    assert records[2].removed == {"vault_rows": 0, "participants_tombstones": 1}


async def test_withdraw_of_a_revoked_participant_is_not_linked_and_skips_the_vendor(rig: Rig) -> None:
    await _link(rig.vault)
    vendor = Vendor()
    await unlink(rig.settings, rig.vault, rig.producer, _clients(vendor), RID)  # type: ignore[arg-type]
    rig.producer.sent.clear()
    report = await withdraw(rig.settings, rig.vault, rig.producer, _clients(vendor), RID,  # type: ignore[arg-type]
                            actor=Actor.PARTICIPANT, purge=False)
    assert report.was_linked is False and report.revoked_at_vendor is False
    assert vendor.revoked == [REFRESH]  # only the unlink's
    link = await rig.vault.get(RID)
    assert link is not None and link.status is LinkStatus.WITHDRAWN
    participants = [value for topic, value, _ in rig.producer.sent if topic == rig.settings.topic("participants")]
    assert len(participants) == 1 and participants[0] is not None
    assert ParticipantLink.from_bytes(participants[0]).status is LinkStatus.WITHDRAWN


async def test_other_participants_are_untouched(rig: Rig) -> None:
    await _link(rig.vault)
    await _link(rig.vault, "R00000002", "another-vendor-user")
    await withdraw(rig.settings, rig.vault, rig.producer, _clients(Vendor()), RID,  # type: ignore[arg-type]
                   actor=Actor.STAFF, purge=True)
    other = await rig.vault.get("R00000002")
    assert other is not None and other.status is LinkStatus.LINKED
    held = await rig.vault.tokens("R00000002")
    assert held is not None and held[0].refresh_token == REFRESH
    assert all(b"R00000002" not in (key or b"") for _, _, key in rig.producer.sent)
    assert orjson.loads(rig.producer.sent[0][1] or b"null")["research_id"] == RID


@pytest.mark.parametrize("leave", ["unlink", "withdraw"])
async def test_after_unlink_or_withdrawal_webhooks_find_nobody_and_the_vendor_user_id_is_gone(rig: Rig,
                                                                                           leave: str) -> None:
    """Audit finding 18: the gateway must not publish fetch requests for someone who left."""
    await _link(rig.vault)
    assert await rig.vault.find_vendor_user(Provider.GOOGLE_HEALTH, VENDOR_USER) == RID
    if leave == "unlink":
        await unlink(rig.settings, rig.vault, rig.producer, _clients(Vendor()), RID)  # type: ignore[arg-type]
    else:
        await withdraw(rig.settings, rig.vault, rig.producer, _clients(Vendor()), RID,  # type: ignore[arg-type]
                       actor=Actor.PARTICIPANT, purge=False)
    assert await rig.vault.find_vendor_user(Provider.GOOGLE_HEALTH, VENDOR_USER) is None
    assert await rig.vault.find_vendor_user(Provider.GOOGLE_HEALTH, VENDOR_USER, revoked=True) is None
    assert await rig.vault.vendor_user(RID) is None
    await _link(rig.vault, "R00000002")  # the account is free for a new link (say, a re-enrolment)
    assert await rig.vault.find_vendor_user(Provider.GOOGLE_HEALTH, VENDOR_USER) == "R00000002"
