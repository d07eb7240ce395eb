"""An in-process signal of how much a worker has processed.

Tests and the demo wait on it ("until 1,000 pages are counted or 60 s pass") instead of
sleeping. It holds counts by a closed vocabulary (provider, stage), never identifiers.
"""

from __future__ import annotations

import asyncio
from collections import Counter

__all__ = ["Progress"]


class Progress:
    """Monotonic counters with an awaitable threshold.

        await progress.wait_for("raw_pages", 1000, timeout=60)
    """

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()
        self._changed = asyncio.Event()

    def add(self, name: str, amount: int = 1) -> None:
        self._counts[name] += amount
        self._changed.set()

    def get(self, name: str) -> int:
        return self._counts[name]

    def snapshot(self) -> dict[str, int]:
        return dict(self._counts)

    async def wait_for(self, name: str, at_least: int, *, timeout: float) -> int:
        """Wait until counter ``name`` reaches ``at_least``; raise TimeoutError with the count."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self._counts[name] < at_least:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"{name} reached {self._counts[name]} of {at_least} within {timeout:g}s")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                continue
        return self._counts[name]
