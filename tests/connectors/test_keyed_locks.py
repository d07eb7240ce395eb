"""Per-key locks: one holder at a time per key, others meanwhile, and nothing kept once unused
(a cancelled waiter included)."""

from __future__ import annotations

import asyncio

from connectors.keyed_locks import KeyedLocks


async def test_one_holder_per_key_and_other_keys_meanwhile() -> None:
    locks, inside, most = KeyedLocks[str](), {"a": 0, "b": 0}, {"a": 0, "b": 0}
    release = asyncio.Event()

    async def hold(key: str) -> None:
        async with locks.held(key):
            inside[key] += 1
            most[key] = max(most[key], inside[key])
            await release.wait()
            inside[key] -= 1

    tasks = [asyncio.ensure_future(hold(k)) for k in ("a", "a", "a", "b")]
    await asyncio.sleep(0.01)
    assert inside == {"a": 1, "b": 1} and locks.users("a") == 3 and locks.locked("a")
    release.set()
    await asyncio.gather(*tasks)
    assert most == {"a": 1, "b": 1}
    assert len(locks) == 0 and list(locks) == [] and not locks.locked("a")


async def test_a_cancelled_waiter_leaves_nothing_behind() -> None:
    locks, release = KeyedLocks[str](), asyncio.Event()

    async def hold() -> None:
        async with locks.held("k"):
            await release.wait()

    holder, waiter = asyncio.ensure_future(hold()), asyncio.ensure_future(hold())
    await asyncio.sleep(0.01)
    waiter.cancel()
    await asyncio.gather(waiter, return_exceptions=True)
    assert locks.users("k") == 1
    release.set()
    await holder
    assert len(locks) == 0
