"""One asyncio lock per key (a participant), kept only while somebody holds or waits for it.

Memory follows the cohort's activity, not its size: a key's lock is dropped once its last
holder or waiter leaves (a later caller makes a new one; nobody can be inside the old).

    locks = KeyedLocks()
    async with locks.held(research_id):
        ...                      # no other holder of research_id's lock runs here
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Hashable, Iterator
from typing import Generic, TypeVar

__all__ = ["KeyedLocks"]

K = TypeVar("K", bound=Hashable)


class _Held:
    """A key's lock and how many hold or wait for it."""

    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock, self.users = asyncio.Lock(), 0


class KeyedLocks(Generic[K]):
    """Per-key locks that exist only while in use (``len()``: the keys held or waited for)."""

    def __init__(self) -> None:
        self._held: dict[K, _Held] = {}

    def __len__(self) -> int:
        return len(self._held)

    def __iter__(self) -> Iterator[K]:
        return iter(self._held)

    def users(self, key: K) -> int:
        """How many hold or wait for ``key``'s lock (0: it does not exist)."""
        held = self._held.get(key)
        return held.users if held else 0

    def locked(self, key: K) -> bool:
        held = self._held.get(key)
        return held is not None and held.lock.locked()

    @contextlib.asynccontextmanager
    async def held(self, key: K) -> AsyncIterator[None]:
        """``key``'s lock, held for the block; dropped once nobody holds or waits for it."""
        held = self._held.get(key)
        if held is None:
            held = self._held[key] = _Held()
        held.users += 1  # before waiting: a waiter keeps the lock alive
        try:
            async with held.lock:
                yield
        finally:
            held.users -= 1
            if not held.users:
                del self._held[key]
