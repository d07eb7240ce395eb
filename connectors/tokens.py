"""Access tokens on demand: refreshed once per participant however many fetches ask at once.

Refresh tokens are single-use, so two concurrent refreshes would lose the participant: the
second one presents a consumed token and is refused. A per-participant lock serializes them;
whoever waited finds the new token already in the vault. The rotated refresh token is stored
(one transaction) before the new access token is handed to anyone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping

from connectors.errors import AccessRevoked, VendorUnavailable
from connectors.oauth import TokenSet
from connectors.vault import TokenVault
from connectors.vendors.base import VendorClient
from models.participants import LinkStatus
from models.providers import Provider
from runtime.metrics import counter

__all__ = ["TokenManager"]

REFRESHES = counter("connector_token_refreshes_total", "Access-token refreshes, by outcome", ["provider", "outcome"],
                    initial=[(p.value, o) for p in Provider
                             for o in ("refreshed", "already_refreshed", "revoked", "unavailable", "lost_race")])
_EARLY_S = 120.0  # refresh this long before expiry, so no request goes out with a dying token


class TokenManager:
    """Hands out a live access token per participant, refreshing it (once, however many ask).

    ::

        tokens = TokenManager(vault, clients, on_revoked=publish_link)
        access = await tokens.access_token(research_id, Provider.FITBIT)
        # the vendor answered 401 after all:
        access = await tokens.refresh(research_id, Provider.FITBIT, stale=access)

    :param vault: where the tokens are kept (rotated refresh tokens are stored before use).
    :param clients: the vendor client of each provider, whose ``refresh`` is called.
    :param on_revoked: awaited with the research_id once a grant turned out revoked, after the
        participant was marked ``revoked`` (the scheduler publishes the changed link).
    """

    def __init__(self, vault: TokenVault, clients: Mapping[Provider, VendorClient],
                 on_revoked: Callable[[str], Awaitable[None]]) -> None:
        self._vault, self._clients, self._on_revoked = vault, clients, on_revoked
        self._locks: dict[str, asyncio.Lock] = {}
        # access tokens in memory: one vault read per token lifetime, not per call (a revoked one
        # is refused by the vendor, which sends us through ``revoked``). Keyed by provider too:
        # a participant who moved from Fitbit to Google must not be sent with a Fitbit token.
        self._cache: dict[tuple[str, Provider], TokenSet] = {}

    async def access_token(self, research_id: str, provider: Provider) -> str:
        cached = self._cache.get((research_id, provider))
        if cached is not None and not cached.expires_within(_EARLY_S):
            return cached.access_token
        async with self._lock(research_id):  # the participant's concurrent first calls share one vault read
            tokens = self._cache.get((research_id, provider))
            if tokens is None or tokens.expires_within(_EARLY_S):
                current = await self._vault.tokens(research_id, provider)
                if current is None:
                    raise AccessRevoked("the participant is not linked", provider=provider)
                tokens = self._cache[research_id, provider] = current[0]
        if tokens.expires_within(_EARLY_S):
            return await self.refresh(research_id, provider, stale=tokens.access_token)
        return tokens.access_token

    async def refresh(self, research_id: str, provider: Provider, *, stale: str) -> str:
        """A fresh access token in place of ``stale`` (refreshing only if nobody did meanwhile)."""
        async with self._lock(research_id):
            current = await self._vault.tokens(research_id, provider)
            if current is None:
                raise AccessRevoked("the participant is not linked", provider=provider)
            tokens, version = current
            if tokens.access_token != stale and not tokens.expires_within(_EARLY_S):
                REFRESHES.labels(provider.value, "already_refreshed").inc()
                self._cache[research_id, provider] = tokens
                return tokens.access_token
            try:
                fresh = await self._clients[provider].refresh(tokens.refresh_token)
            except AccessRevoked:  # the token endpoint refused the grant (invalid_grant): the only unlinking
                REFRESHES.labels(provider.value, "revoked").inc()
                await self.revoked(research_id, provider)
                raise
            except VendorUnavailable:  # 5xx, a timeout, no tokens in the answer: the tokens stay, retried
                REFRESHES.labels(provider.value, "unavailable").inc()
                raise
            if not await self._vault.rotate(research_id, fresh, version=version):
                # another process rotated first; its tokens are the live ones (ours were never used)
                REFRESHES.labels(provider.value, "lost_race").inc()
                again = await self._vault.tokens(research_id, provider)
                if again is None:
                    raise AccessRevoked("the participant was unlinked", provider=provider)
                self._cache[research_id, provider] = again[0]
                return again[0].access_token
            REFRESHES.labels(provider.value, "refreshed").inc()
            self._cache[research_id, provider] = fresh
            return fresh.access_token

    def _lock(self, research_id: str) -> asyncio.Lock:
        return self._locks.setdefault(research_id, asyncio.Lock())

    async def revoked(self, research_id: str, provider: Provider) -> None:
        """The vendor refused the grant: delete the tokens, mark the participant, tell the topic."""
        self._cache.pop((research_id, provider), None)
        await self._vault.set_status(research_id, LinkStatus.REVOKED, provider=provider)
        await self._on_revoked(research_id)
