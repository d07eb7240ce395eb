"""Link a participant's vendor account: OAuth2 authorization code with PKCE, then the vault,
the ``participants`` topic, the webhook subscription and the backfill request.

``complete_link`` is what the callback of the linking web page does (a later issue adds the
page); ``link_through_consent`` drives the simulator's consent page programmatically, as a
participant's browser would, for the demo and the tests.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import parse_qs, urlsplit

import aiohttp
from aiokafka import AIOKafkaProducer

from connectors.backoff import retry_unavailable
from connectors.oauth import TokenSet, pkce_pair
from connectors.scheduler import fetch_window
from connectors.vault import Link, TokenVault
from connectors.vendor_errors import VendorRejected
from models.fetch import FetchReason, FetchRequest
from models.ids import research_id
from models.providers import Provider
from runtime.metrics import counter
from runtime.settings import Settings

__all__ = ["LinkingClient", "complete_link", "link_through_consent"]

LINKS = counter("connector_links_total", "Participants linked, by outcome", ["provider", "outcome"])


class LinkingClient(Protocol):
    provider: Provider
    data_types: tuple[str, ...]

    def authorize_url(self, *, state: str, challenge: str, redirect_uri: str) -> str: ...

    async def exchange_code(self, code: str, verifier: str, redirect_uri: str) -> TokenSet: ...

    async def whoami(self, access_token: str) -> tuple[str, str | None]: ...

    async def subscribe(self, access_token: str, vendor_user_id: str) -> None: ...


@dataclass(frozen=True, slots=True)
class _Consent:
    code: str
    verifier: str


async def complete_link(settings: Settings, vault: TokenVault, producer: AIOKafkaProducer, client: LinkingClient,
                        participant_id: str, code: str, verifier: str) -> Link:
    """Exchange the code, store the tokens, announce the link, subscribe, ask for the backfill."""
    tokens = await client.exchange_code(code, verifier, settings.redirect_uri)
    retrying = {"attempts": settings.fetch_max_attempts, "base_s": settings.retry_base_delay}
    vendor_user, timezone = await retry_unavailable(lambda: client.whoami(tokens.access_token), **retrying)
    rid = research_id(settings.require_secret_key(), participant_id)
    link = await vault.link(rid, client.provider, vendor_user, tokens, timezone=timezone)
    key = rid.encode()
    await producer.send_and_wait(settings.topic("participants"),
                                 link.record(settings.secret_key_id).to_bytes(), key=key)
    await retry_unavailable(lambda: client.subscribe(tokens.access_token, vendor_user), **retrying)
    start, end = fetch_window(settings.backfill_days)
    for data_type in client.data_types:
        request = FetchRequest(client.provider, data_type, start, end, FetchReason.BACKFILL, time.time())
        await producer.send(settings.topic("fetch-requests"), request.to_bytes(), key=key)
    LINKS.labels(client.provider.value, "linked").inc()
    return link


async def link_through_consent(settings: Settings, vault: TokenVault, producer: AIOKafkaProducer,
                               client: LinkingClient, session: aiohttp.ClientSession, participant_id: str) -> Link:
    """Open the vendor's consent page, press Allow as ``participant_id``, follow the redirect."""
    consent = await _consent(settings, client, session, participant_id)
    return await complete_link(settings, vault, producer, client, participant_id, consent.code, consent.verifier)


async def _consent(settings: Settings, client: LinkingClient, session: aiohttp.ClientSession,
                   participant_id: str) -> _Consent:
    verifier, challenge = pkce_pair()
    state = secrets.token_urlsafe(16)
    url = client.authorize_url(state=state, challenge=challenge, redirect_uri=settings.redirect_uri)
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
    return _Consent(returned["code"], verifier)
