"""Access tokens on demand: refreshed once per participant however many fetches ask at once.

Refresh tokens are single-use, so two concurrent refreshes would lose the participant: the
second one presents a consumed token and is refused. A per-participant lock serializes them;
whoever waited finds the new token already in the vault. The rotated refresh token is stored
(one transaction) before the new access token is handed to anyone.

Memory follows the cohort's activity, not its size: a participant's lock exists only while
somebody holds or waits for it, and a cached access token not asked for in ``idle_s`` is
forgotten (the next call reads the vault again).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping

from connectors.errors import AccessRevoked, VendorUnavailable
from connectors.keyed_locks import KeyedLocks
from connectors.oauth import TokenSet
from connectors.vault import TokenVault
from connectors.vendors.base import VendorClient
from models.participants import LinkStatus
from models.providers import Provider
from runtime.metrics import counter

__all__ = ["IDLE_S", "TokenManager"]

REFRESHES = counter("connector_token_refreshes_total", "Access-token refreshes, by outcome", ["provider", "outcome"],
                    initial=[(p.value, o) for p in Provider
                             for o in ("refreshed", "already_refreshed", "revoked", "unavailable", "lost_race")])
_EARLY_S = 120.0  # refresh this long before expiry, so no request goes out with a dying token
#: a cached token unused this long is dropped: one vault read per participant per idle hour at most
IDLE_S = 3600.0


class _Cached:
    __slots__ = ("tokens", "used")

    def __init__(self, tokens: TokenSet, used: float) -> None:
        self.tokens, self.used = tokens, used


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
    :param idle_s: a cached access token not asked for this long is forgotten.
    :param clock: monotonic seconds (tests pass a fake one).
    """

    def __init__(self, vault: TokenVault, clients: Mapping[Provider, VendorClient],
                 on_revoked: Callable[[str], Awaitable[None]], *, idle_s: float = IDLE_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._vault, self._clients, self._on_revoked = vault, clients, on_revoked
        self._idle_s, self._clock = idle_s, clock
        self._locks = KeyedLocks[str]()  # only the participants someone holds or waits on
        # access tokens in memory: one vault read per token lifetime, not per call (a revoked one
        # is refused by the vendor, which sends us through ``revoked``). Keyed by provider too:
        # a participant who moved from Fitbit to Google must not be sent with a Fitbit token.
        # Least recently used first, so the idle ones are dropped from the front.
        self._cache: OrderedDict[tuple[str, Provider], _Cached] = OrderedDict()

    def _cached(self, key: tuple[str, Provider]) -> TokenSet | None:
        now = self._clock()
        cutoff = now - self._idle_s
        while self._cache:  # forget the idle ones first: the front is the least recently used
            oldest, entry = next(iter(self._cache.items()))
            if entry.used > cutoff:
                break
            del self._cache[oldest]
        found = self._cache.get(key)
        if found is None:
            return None
        found.used = now
        self._cache.move_to_end(key)
        return found.tokens

    def _remember(self, key: tuple[str, Provider], tokens: TokenSet) -> None:
        self._cache[key] = _Cached(tokens, self._clock())
        self._cache.move_to_end(key)

    async def access_token(self, research_id: str, provider: Provider) -> str:
        cached = self._cached((research_id, provider))
        if cached is not None and not cached.expires_within(_EARLY_S):
            return cached.access_token
        async with self._locks.held(research_id):  # the participant's concurrent first calls share one vault read
            tokens = self._cached((research_id, provider))
            if tokens is None or tokens.expires_within(_EARLY_S):
                current = await self._vault.tokens(research_id, provider)
                if current is None:
                    raise AccessRevoked("the participant is not linked", provider=provider)
                tokens = current[0]
                self._remember((research_id, provider), tokens)
        if tokens.expires_within(_EARLY_S):
            return await self.refresh(research_id, provider, stale=tokens.access_token)
        return tokens.access_token

    async def refresh(self, research_id: str, provider: Provider, *, stale: str) -> str:
        """A fresh access token in place of ``stale`` (refreshing only if nobody did meanwhile)."""
        async with self._locks.held(research_id):
            current = await self._vault.tokens(research_id, provider)
            if current is None:
                raise AccessRevoked("the participant is not linked", provider=provider)
            tokens, version = current
            if tokens.access_token != stale and not tokens.expires_within(_EARLY_S):
                REFRESHES.labels(provider.value, "already_refreshed").inc()
                self._remember((research_id, provider), tokens)
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
                self._remember((research_id, provider), again[0])
                return again[0].access_token
            REFRESHES.labels(provider.value, "refreshed").inc()
            self._remember((research_id, provider), fresh)
            return fresh.access_token

    async def revoked(self, research_id: str, provider: Provider) -> None:
        """The vendor refused the grant: delete the tokens, mark the participant, tell the topic."""
        self._cache.pop((research_id, provider), None)
        await self._vault.set_status(research_id, LinkStatus.REVOKED, provider=provider)
        await self._on_revoked(research_id)
