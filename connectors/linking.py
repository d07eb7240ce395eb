"""Link a participant's vendor account: OAuth2 authorization code with PKCE, then the vault,
the ``participants`` topic, the webhook subscription and the backfill request.

``complete_link`` is what the callback of the portal's linking page does; it trusts its caller
for the participant and the PKCE verifier, which the portal holds in the participant's session
with a single-use, expiring state (``portal/app.py``, ``link_start``/``link_callback``), never
reading them from the request. ``link_through_consent`` drives the simulator's consent page
programmatically, as a participant's browser would, for the demo and the tests.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import aiohttp
from aiokafka import AIOKafkaProducer

from connectors.errors import VendorRejected
from connectors.oauth import pkce_pair
from connectors.scheduler import fetch_window
from connectors.vault import AccountLinkedElsewhere, Link, TokenVault
from connectors.vendors.base import VendorClient, retrying
from connectors.withdrawal import revoke_grant
from models.errors import ConfigurationError
from models.fetch import FetchReason, FetchRequest
from models.ids import research_id
from models.participants import LinkStatus
from models.providers import Provider
from runtime.metrics import counter
from runtime.settings import Settings

__all__ = ["Consent", "complete_link", "give_consent", "link_through_consent"]

logger = logging.getLogger(__name__)

LINKS = counter("connector_links_total", "Participants linked, by outcome", ["provider", "outcome"])


@dataclass(frozen=True, slots=True)
class Consent:
    """What the consent page's redirect gave: the code, and the PKCE verifier it was asked with."""

    code: str
    verifier: str


async def complete_link(settings: Settings, vault: TokenVault, producer: AIOKafkaProducer, client: VendorClient,
                        participant_id: str, code: str, verifier: str, *,
                        clients: Mapping[Provider, VendorClient] | None = None) -> Link:
    """Exchange the code, store the tokens, announce the link, subscribe, ask for the backfill.

    A participant moving from the Fitbit Web API to Google Health keeps their research_id (and so
    their days): Google's ``legacyUserId`` names their Fitbit account, whose link this replaces.
    The backfill then re-reads days the Fitbit link already sent; the same minutes have the same
    sample identity, so the daily agent counts them as duplicates, never twice.

    A link this one replaces loses its grant at the vendor too (best effort, counted in
    ``vendor_revoke_failures_total``), unless it is the same vendor account: a revocation ends the
    whole grant, the new tokens with it.

    :param clients: every vendor's client, to revoke a replaced link at another vendor (without
        it, only a replaced link at ``client``'s vendor is revoked; any other is counted as failed).
    :raises AccountLinkedElsewhere: the vendor account is linked to another research_id; nothing
        is stored or sent (its new tokens are dropped, not revoked: that would end the other link).
    """
    tokens = await client.exchange_code(code, verifier, settings.vendors.redirect_uri)
    attempts, base_s = settings.scheduler.fetch_max_attempts, settings.scheduler.retry_base_delay
    identity = await retrying(lambda: client.whoami(tokens.access_token), attempts=attempts, base_s=base_s)
    rid = research_id(settings.require_secret_key(), participant_id)
    if identity.legacy_user_id:
        legacy = await vault.find_vendor_user(Provider.FITBIT, identity.legacy_user_id, revoked=True)
        old = None if legacy is None else await vault.get(legacy)
        # a revoked Fitbit link (the Web API's switch-off revokes them all) carries over; a
        # participant who left the study is not collected again under their old research_id
        if old is not None and old.status is not LinkStatus.WITHDRAWN:
            rid = old.research_id
            LINKS.labels(client.provider.value, "generation_change").inc()
    granted = client.granted(tokens.scope)
    denied = tuple(t for t in client.data_types if t not in granted)
    replaced = await _live_grant(vault, rid)
    try:
        link = await vault.link(rid, client.provider, identity.user_id, tokens, timezone=identity.timezone,
                                denied=denied)
    except AccountLinkedElsewhere:
        LINKS.labels(client.provider.value, "linked_elsewhere").inc()
        raise
    if replaced is not None:
        provider, vendor_user, refresh_token = replaced
        if provider is not client.provider or vendor_user != identity.user_id:
            revoking = client if provider is client.provider else (clients or {}).get(provider)
            if await revoke_grant(revoking, provider, refresh_token):
                LINKS.labels(provider.value, "replaced_revoked").inc()
    key = rid.encode()
    await producer.send_and_wait(settings.topic("participants"),
                                 link.record(settings.secret_key_id).to_bytes(), key=key)
    if _subscribes_per_user(settings, client):
        await retrying(lambda: client.subscribe(tokens.access_token, identity.user_id), attempts=attempts,
                       base_s=base_s)
    start, end = fetch_window(settings.scheduler.backfill_days)
    for data_type in granted:
        request = FetchRequest(client.provider, data_type, start, end, FetchReason.BACKFILL, time.time())
        await producer.send(settings.topic("fetch-requests"), request.to_bytes(), key=key)
    LINKS.labels(client.provider.value, "linked").inc()
    return link


async def _live_grant(vault: TokenVault, research_id: str) -> tuple[Provider, str | None, str] | None:
    """The vendor, vendor user ID and refresh token of the participant's live link, if any."""
    link = await vault.get(research_id)
    if link is None or link.status is not LinkStatus.LINKED:
        return None
    try:
        held = await vault.tokens(research_id, link.provider)
        vendor_user = await vault.vendor_user(research_id)
    except ConfigurationError as error:  # unreadable: replaced anyway, its grant expires unused
        logger.warning("the %s link being replaced is unreadable (%s): not revoked", link.provider.value,
                       type(error).__name__)
        return None
    return None if held is None else (link.provider, vendor_user, held[0].refresh_token)


def _subscribes_per_user(settings: Settings, client: VendorClient) -> bool:
    """Fitbit always; Google only under the MANUAL policy (AUTOMATIC notifies for every user who
    consented, with no per-user subscription)."""
    return client.provider is not Provider.GOOGLE_HEALTH or settings.gateway.google_subscription_policy == "manual"


async def link_through_consent(settings: Settings, vault: TokenVault, producer: AIOKafkaProducer,
                               client: VendorClient, session: aiohttp.ClientSession, participant_id: str) -> Link:
    """Open the vendor's consent page, press Allow as ``participant_id``, follow the redirect."""
    consent = await give_consent(client, session, participant_id, redirect_uri=settings.vendors.redirect_uri)
    return await complete_link(settings, vault, producer, client, participant_id, consent.code, consent.verifier)


async def give_consent(client: VendorClient, session: aiohttp.ClientSession, participant_id: str, *,
                       redirect_uri: str) -> Consent:
    """What a participant's browser does on the (simulated) consent page: open it, press Allow,
    read the code off the redirect; ``VendorRejected`` if the page or the redirect says no."""
    verifier, challenge = pkce_pair()
    state = secrets.token_urlsafe(16)
    url = client.authorize_url(state=state, challenge=challenge, redirect_uri=redirect_uri)
    async with session.get(url) as page:
        if page.status != 200 or "<form" not in await page.text():
            LINKS.labels(client.provider.value, "refused").inc()
            raise VendorRejected(f"the consent page answered {page.status}", provider=client.provider,
                                 status=page.status)
    form = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    form.update(participant=participant_id, decision="allow")
    async with session.post(url.split("?", 1)[0], data=form, allow_redirects=False) as answer:
        location = answer.headers.get("Location", "")
    returned = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    if answer.status != 302 or returned.get("state") != state or "code" not in returned:
        LINKS.labels(client.provider.value, "refused").inc()
        raise VendorRejected(f"consent did not return a code ({answer.status} {returned.get('error', '')})",
                             provider=client.provider, status=answer.status)
    return Consent(returned["code"], verifier)
