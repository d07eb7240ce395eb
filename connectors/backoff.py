"""Jittered exponential backoff, and a retry loop for calls that may meet a 5xx or a timeout."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from connectors.vendor_errors import VendorUnavailable

__all__ = ["backoff_delay", "retry_unavailable"]

T = TypeVar("T")
_CAP_S = 30.0


def backoff_delay(attempt: int, base_s: float) -> float:
    """Seconds to wait before retry ``attempt`` (1, 2, ...): base·2^(n-1), capped, times 0.5-1.5."""
    return min(_CAP_S, base_s * 2 ** (attempt - 1)) * random.uniform(0.5, 1.5)  # noqa: S311 - jitter


async def retry_unavailable(call: Callable[[], Awaitable[T]], *, attempts: int, base_s: float) -> T:
    for attempt in range(1, attempts + 1):
        try:
            return await call()
        except VendorUnavailable:
            if attempt == attempts:
                raise
            await asyncio.sleep(backoff_delay(attempt, base_s))
    raise AssertionError("unreachable")
