"""The rate limiter: per-user windows, and the vendor's own count for requests we did not send; spent
windows and past blocks are dropped (memory follows the cohort's activity), the limits still hold."""

from __future__ import annotations

import asyncio

from multidict import CIMultiDict
from prometheus_client import REGISTRY

from connectors.errors import quota_remaining
from connectors.ratelimit import RateLimiter
from models.providers import Provider


async def _granted(limiter: RateLimiter, provider: Provider, rid: str, most: int) -> int:
    """How many requests go out at once before the limiter holds one back."""
    for n in range(most):
        try:
            await asyncio.wait_for(limiter.acquire(provider, rid), 0.05)
        except TimeoutError:
            return n
    return most


async def test_user_windows_hold_back_the_request_over_the_limit() -> None:
    limiter = RateLimiter(google_project_limit=1000)
    assert await _granted(limiter, Provider.FITBIT, "a", 200) == 150
    assert await _granted(limiter, Provider.GOOGLE_HEALTH, "a", 400) == 300
    assert await _granted(limiter, Provider.GOOGLE_HEALTH, "b", 400) == 300
    assert await _granted(limiter, Provider.GOOGLE_HEALTH, "c", 400) == 300
    assert await _granted(limiter, Provider.GOOGLE_HEALTH, "d", 400) == 100  # the project's 1,000 a minute


async def test_requests_the_vendor_counted_but_we_did_not_send_use_up_the_window() -> None:
    limiter = RateLimiter()
    assert await _granted(limiter, Provider.FITBIT, "a", 10) == 10
    # the linking pages made 2 calls and a restarted scheduler 3: the vendor says 135 are left
    # (in lower case, as over HTTP/2; the HTTP libraries' header mappings ignore case)
    limiter.observe(Provider.FITBIT, "a", quota_remaining(CIMultiDict({"fitbit-rate-limit-remaining": "135"})))
    assert await _granted(limiter, Provider.FITBIT, "a", 200) == 135
    # an answer counted before our later requests arrived says more are left than we think: ignored
    assert await _granted(limiter, Provider.FITBIT, "b", 20) == 20
    limiter.observe(Provider.FITBIT, "b", 145)
    assert await _granted(limiter, Provider.FITBIT, "b", 200) == 130
    limiter.observe(Provider.GOOGLE_HEALTH, "a", quota_remaining({"Retry-After": "5"}))  # no count: nothing
    assert quota_remaining({"Fitbit-Rate-Limit-Remaining": "x"}) is None


def test_the_headroom_the_vendor_last_reported_is_a_gauge_and_a_429_leaves_none() -> None:
    limiter = RateLimiter()

    def remaining() -> float | None:
        return REGISTRY.get_sample_value("wearables_connector_rate_limit_remaining", {"provider": "fitbit"})

    limiter.observe(Provider.FITBIT, "never-sent", 120)  # reported even for a participant we hold no window of
    assert remaining() == 120
    limiter.observe(Provider.FITBIT, "a", None)  # no count in the answer: the last one stands
    assert remaining() == 120
    limiter.block(Provider.FITBIT, "a", 0.01)
    assert remaining() == 0


class _Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def _windows(limiter: RateLimiter) -> int:
    return sum(len(users) for users in limiter._users.values())


async def test_spent_windows_are_dropped_and_the_limits_hold_across_it() -> None:
    clock = _Clock()
    limiter = RateLimiter(google_project_limit=1_000_000, clock=clock)
    assert await _granted(limiter, Provider.FITBIT, "hourly", 200) == 150  # Fitbit: 150 an hour
    for n in range(100_000):
        await limiter.acquire(Provider.GOOGLE_HEALTH, f"g{n}")
    assert _windows(limiter) == 100_001
    clock.now += 30
    assert await _granted(limiter, Provider.GOOGLE_HEALTH, "minutely", 400) == 300  # Google: 300 a minute
    clock.now += 40  # 70 s on: the 100,000 sent nothing within Google's window (61 s)
    for n in range(3):
        await limiter.acquire(Provider.GOOGLE_HEALTH, f"g{n}")  # the active few
    assert _windows(limiter) == 1 + 1 + 3  # "hourly", "minutely" (30 s ago) and the few
    assert await _granted(limiter, Provider.FITBIT, "hourly", 10) == 0  # kept: its hour is not over
    assert await _granted(limiter, Provider.GOOGLE_HEALTH, "minutely", 10) == 0  # kept: within its minute
    clock.now += 32  # "minutely" spent (62 s)
    assert await _granted(limiter, Provider.GOOGLE_HEALTH, "minutely", 400) == 300  # a full window again, no more
    clock.now += 3601 - 102 + 1  # "hourly" spent too: nothing left inside its window
    await limiter.acquire(Provider.GOOGLE_HEALTH, "g0")
    assert _windows(limiter) == 1
    assert await _granted(limiter, Provider.FITBIT, "hourly", 200) == 150


async def test_blocks_are_dropped_once_their_reset_passed_and_hold_until_then() -> None:
    clock = _Clock()
    limiter = RateLimiter(clock=clock)
    for n in range(100_000):
        limiter.block(Provider.FITBIT, f"f{n}", 60)
    limiter.block(Provider.FITBIT, "long", 600)
    limiter.block(Provider.FITBIT, "f7", 300)  # a second 429 extends the first block
    assert len(limiter._blocked) == 100_001
    clock.now += 100
    for n in range(3):
        await limiter.acquire(Provider.FITBIT, f"f{n}")  # theirs are over
    assert sorted(key[1] for key in limiter._blocked) == ["f7", "long"]
    assert len(limiter._unblocks) == 2
    assert await _granted(limiter, Provider.FITBIT, "long", 1) == 0  # still blocked
    assert await _granted(limiter, Provider.FITBIT, "f7", 1) == 0
    clock.now += 501
    assert await _granted(limiter, Provider.FITBIT, "long", 1) == 1
    assert limiter._blocked == {} and limiter._unblocks == []
