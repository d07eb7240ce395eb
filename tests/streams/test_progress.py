"""Progress (streams/progress.py): monotonic counters and an awaitable threshold."""

from __future__ import annotations

import asyncio

import pytest

from streams.progress import Progress


def test_counters_add_up_by_name() -> None:
    progress = Progress()
    progress.add("raw_pages")
    progress.add("raw_pages", 4)
    progress.add("samples", 1440)
    assert progress.get("raw_pages") == 5 and progress.get("samples") == 1440
    assert progress.get("never_counted") == 0
    assert progress.snapshot() == {"raw_pages": 5, "samples": 1440}


async def test_wait_for_returns_the_count_once_the_threshold_is_reached() -> None:
    progress = Progress()

    async def count(n: int) -> None:
        for _ in range(n):
            await asyncio.sleep(0.01)
            progress.add("raw_pages", 2)

    counting = asyncio.ensure_future(count(5))
    assert await progress.wait_for("raw_pages", 7, timeout=5) == 8  # the first count at or past 7
    await counting
    assert await progress.wait_for("raw_pages", 10, timeout=0.1) == 10  # already there: no wait


async def test_wait_for_times_out_with_how_far_it_got() -> None:
    progress = Progress()
    progress.add("raw_pages", 3)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(TimeoutError, match=r"raw_pages reached 3 of 50 within 0\.2s"):
        await progress.wait_for("raw_pages", 50, timeout=0.2)
    assert 0.15 <= loop.time() - started < 2


async def test_other_counters_do_not_end_the_wait_early() -> None:
    progress = Progress()

    async def noise() -> None:
        for _ in range(20):
            await asyncio.sleep(0.005)
            progress.add("samples", 100)

    task = asyncio.ensure_future(noise())
    with pytest.raises(TimeoutError, match="raw_pages reached 0 of 1"):
        await progress.wait_for("raw_pages", 1, timeout=0.3)
    await task
    assert progress.get("samples") == 2000
