"""Unlink, withdraw and purge: a participant's choices to stop sharing or leave the study.

The portal (the participant) and ``wearables withdraw`` (staff) both call these, so the two
paths cannot drift apart.

- :func:`unlink` ends the grant at the vendor, deletes the tokens and publishes ``revoked``: the
  scheduler finds no tokens from its next cycle on, and fetches nothing more.
- :func:`withdraw` does the same with status ``withdrawn``; with ``purge`` it also removes the
  participant's data everywhere we hold it (docs/architecture.md, "Withdrawal and purge"):

  1. an audit record ``purge`` onto ``audit`` (keyed by a keyed pseudonym, never the research
     ID): from then on every consumer skips the participant's records, including records still
     inside a topic's retention and a replay from the start;
  2. a purge marker onto ``samples``, behind every batch of theirs already there: the daily
     agent deletes their day state, writes tombstones for their ``daily`` keys and passes the
     marker on to ``intraday``, where the sink removes their rows from every Parquet table;
  3. a tombstone for their ``participants`` key, and their vault row deleted.

  Each component appends its own audit record of what it removed (``models/audit.py``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer

from connectors.errors import VendorError
from connectors.vault import Link, TokenVault
from connectors.vendors.base import VendorClient
from models.audit import Action, Actor, AuditRecord, subject_of
from models.participants import LinkStatus
from models.providers import Provider
from models.purge import PurgeMarker
from runtime.metrics import counter
from runtime.settings import Settings

__all__ = ["WithdrawalReport", "revoke_grant", "unlink", "withdraw"]

logger = logging.getLogger(__name__)

UNLINKS = counter("participant_unlinks_total", "Links ended by the participant or staff, by outcome", ["outcome"],
                  initial=[("unlinked",), ("not_linked",)])
WITHDRAWALS = counter("participant_withdrawals_total", "Participants who left the study, by actor and purge",
                      ["actor", "purge"], initial=[(a.value, purge) for a in (Actor.PARTICIPANT, Actor.STAFF)
                                                   for purge in ("true", "false")])
REVOKE_FAILURES = counter("vendor_revoke_failures_total", "Grant revocations the vendor did not confirm "
                          "(the tokens are deleted anyway)", ["provider"], initial=[(p.value,) for p in Provider])


@dataclass(frozen=True, slots=True)
class WithdrawalReport:
    """What :func:`withdraw` did here; the worker and the sink report their part on ``audit``."""

    was_linked: bool
    revoked_at_vendor: bool
    purged: bool
    daily_days: int  # dates of theirs found in the dataset, tombstoned by the daily agent


async def _end_grant(settings: Settings, vault: TokenVault, producer: AIOKafkaProducer,
                     clients: Mapping[Provider, VendorClient], research_id: str,
                     status: LinkStatus) -> tuple[Link | None, bool]:
    """Revoke at the vendor (best effort), delete the tokens, set ``status``, announce it.

    Returns the link before the change and whether the vendor confirmed the revocation.
    """
    link = await vault.get(research_id)
    if link is None:
        return None, False
    revoked = False
    held = await vault.tokens(research_id)
    if held is not None:
        revoked = await revoke_grant(clients.get(link.provider), link.provider, held[0].refresh_token)
    # nothing ties the row to the vendor account any more: its webhooks find nobody
    await vault.set_status(research_id, status, forget_vendor_user=True)
    updated = await vault.get(research_id)
    if updated is not None:
        await producer.send_and_wait(settings.topic("participants"),
                                     updated.record(settings.secret_key_id).to_bytes(), key=research_id.encode())
    return link, revoked


async def revoke_grant(client: VendorClient | None, provider: Provider, refresh_token: str) -> bool:
    """Revoke a grant at the vendor, best effort: True when the vendor confirmed it. A failure (or
    no client for ``provider``) is counted in ``vendor_revoke_failures_total`` and logged; the
    caller deletes the tokens anyway, and the grant expires unused."""
    if client is None:
        REVOKE_FAILURES.labels(provider=provider.value).inc()
        logger.warning("no %s client to revoke a grant with; its tokens are deleted", provider.value)
        return False
    try:
        await client.revoke(refresh_token)
    except (VendorError, OSError, TimeoutError) as error:
        REVOKE_FAILURES.labels(provider=provider.value).inc()
        logger.warning("revoking a %s grant failed (%s); its tokens are deleted", provider.value,
                       type(error).__name__)
        return False
    return True


async def unlink(settings: Settings, vault: TokenVault, producer: AIOKafkaProducer,
                 clients: Mapping[Provider, VendorClient], research_id: str) -> bool:
    """Stop sharing: revoke, delete the tokens, publish ``revoked``. False when there was no live link."""
    link = await vault.get(research_id)
    if link is None or link.status is not LinkStatus.LINKED:
        UNLINKS.labels(outcome="not_linked").inc()
        return False
    await _end_grant(settings, vault, producer, clients, research_id, LinkStatus.REVOKED)
    UNLINKS.labels(outcome="unlinked").inc()
    return True


async def withdraw(settings: Settings, vault: TokenVault, producer: AIOKafkaProducer,
                   clients: Mapping[Provider, VendorClient], research_id: str, *, actor: Actor, purge: bool,
                   dates: tuple[str, ...] = ()) -> WithdrawalReport:
    """Leave the study; with ``purge``, remove the participant's data everywhere (module docstring).

    :param dates: local dates (ISO) of theirs already in the dataset, so that the daily agent also
        tombstones ``daily`` keys whose day state has expired (``portal.my_data.dates_of``).
    """
    link, revoked = await _end_grant(settings, vault, producer, clients, research_id, LinkStatus.WITHDRAWN)
    subject = subject_of(settings.require_secret_key(), research_id)
    key = research_id.encode()
    await _audit(settings, producer, AuditRecord(subject, Action.WITHDRAW, actor, time.time(), "portal",
                                                 {"tokens": int(link is not None), "purge_requested": int(purge)}))
    if purge:
        await _audit(settings, producer, AuditRecord(subject, Action.PURGE, actor, time.time(), "portal", {}))
        marker = PurgeMarker(research_id, dates)
        await producer.send_and_wait(settings.topic("samples"), marker.to_bytes(), key=key)
        await producer.send_and_wait(settings.topic("participants"), None, key=key)  # the tombstone
        removed = await vault.forget(research_id)
        await _audit(settings, producer, AuditRecord(subject, Action.REMOVED, Actor.SYSTEM, time.time(), "vault",
                                                     {"vault_rows": removed, "participants_tombstones": 1}))
    WITHDRAWALS.labels(actor=actor.value, purge=str(purge).lower()).inc()
    return WithdrawalReport(was_linked=link is not None and link.status is LinkStatus.LINKED,
                            revoked_at_vendor=revoked, purged=purge, daily_days=len(dates))


async def _audit(settings: Settings, producer: AIOKafkaProducer, record: AuditRecord) -> None:
    await producer.send_and_wait(settings.topic("audit"), record.to_bytes(), key=record.subject.encode())
