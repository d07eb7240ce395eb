"""The token manager's memory follows the cohort's activity, not its size: idle cached tokens are
forgotten, and a participant's lock lives only while somebody holds or waits for it (audit finding 25)."""

from __future__ import annotations

import asyncio
import time

from connectors.oauth import TokenSet
from connectors.tokens import TokenManager
from models.providers import Provider

P = Provider.GOOGLE_HEALTH
_IDLE_S = 600.0


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class _Vault:
    """Every participant linked, with a token good for an hour; counts the reads."""

    def __init__(self) -> None:
        self.reads, self.rotated = 0, dict[str, TokenSet]()

    async def tokens(self, research_id: str, provider: Provider) -> tuple[TokenSet, int]:
        self.reads += 1
        if research_id in self.rotated:
            return self.rotated[research_id], 2
        return TokenSet(f"access-{research_id}", f"refresh-{research_id}", time.time() + 3600), 1

    async def rotate(self, research_id: str, tokens: TokenSet, *, version: int) -> bool:
        self.rotated[research_id] = tokens
        return True


class _SlowRefresh:
    """A vendor client whose refresh waits until the test lets it go."""

    def __init__(self) -> None:
        self.release = asyncio.Event()

    async def refresh(self, refresh_token: str) -> TokenSet:
        await self.release.wait()
        return TokenSet("fresh", "refresh-2", time.time() + 3600)


async def _nobody(research_id: str) -> None:
    raise AssertionError("nobody is revoked here")


async def test_idle_cached_tokens_are_forgotten_and_no_lock_outlives_its_users() -> None:
    clock, vault = _Clock(), _Vault()
    manager = TokenManager(vault, {}, _nobody, idle_s=_IDLE_S, clock=clock)  # type: ignore[arg-type]
    for n in range(100_000):
        assert await manager.access_token(f"R{n}", P) == f"access-R{n}"
    assert len(manager._cache) == 100_000 and len(manager._locks) == 0  # each lock went with its last user
    clock.now += _IDLE_S / 2
    for n in range(3):  # the active few, asked for again within the idle time
        await manager.access_token(f"R{n}", P)
    assert vault.reads == 100_000  # from the cache
    clock.now += _IDLE_S / 2 + 1  # the others idle for longer than idle_s
    await manager.access_token("R0", P)
    assert sorted(key for key, _ in manager._cache) == ["R0", "R1", "R2"]
    assert vault.reads == 100_000
    await manager.access_token("R99999", P)  # forgotten: read from the vault again, cached again
    assert vault.reads == 100_001 and len(manager._cache) == 4


async def test_a_lock_is_kept_while_someone_holds_or_waits_for_it() -> None:
    clock, vault, client = _Clock(), _Vault(), _SlowRefresh()
    manager = TokenManager(vault, {P: client}, _nobody, idle_s=_IDLE_S, clock=clock)  # type: ignore[arg-type]
    current, _ = await vault.tokens("R1", P)
    holder = asyncio.ensure_future(manager.refresh("R1", P, stale=current.access_token))
    waiter = asyncio.ensure_future(manager.refresh("R1", P, stale=current.access_token))
    await asyncio.sleep(0.01)
    clock.now += 10 * _IDLE_S
    for n in range(100):  # other participants come and go meanwhile
        await manager.access_token(f"other-{n}", P)
    assert list(manager._locks) == ["R1"] and manager._locks.users("R1") == 2  # one holds it, one waits
    assert manager._locks.locked("R1")
    client.release.set()
    assert await asyncio.gather(holder, waiter) == ["fresh", "fresh"]
    assert len(manager._locks) == 0 and not manager._locks.locked("R1")
