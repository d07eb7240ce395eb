"""Stay under the vendors' request limits, per participant and per project.

The vendors count in fixed windows (Fitbit: 150 per user per clock hour; Google Health: 300 per
user per minute and 120,000 per project per minute). We keep a sliding window one second longer
than theirs: at most L requests in any window of T + 1 s means at most L in every fixed window
of length T the vendor can draw, even when a request sent at the end of one window arrives at
the start of the next. After a 429 a participant is blocked until the reset the headers gave.

Our count sees only this process's requests; the vendor's counts everyone's (the linking pages'
profile and subscription calls, another scheduler, this one before a restart). Where the vendor
says how many requests are left (Fitbit, on every answer), the ones we did not send are added
to our window, so that they too keep us under the limit.

Memory follows the cohort's activity, not its size: a participant's window is dropped once no
request of it is left inside the window (a new one, empty, holds back exactly what the old one
would), and a block once its reset has passed.
"""

from __future__ import annotations

import asyncio
import heapq
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass

from connectors.vendors import fitbit_spec, google_health_spec
from models.providers import Provider
from runtime.metrics import counter, gauge

__all__ = ["REMAINING", "Limit", "RateLimiter"]

WAITS = counter("connector_rate_limit_waits_total", "Requests held back to stay under a vendor limit",
                ["provider", "reason"], initial=[(p.value, r) for p in Provider for r in ("blocked", "window")])
UNSEEN = counter("connector_rate_limit_unseen_requests_total",
                 "Requests a vendor counted against a participant that this process did not send", ["provider"])
REMAINING = gauge("connector_rate_limit_remaining", "Requests left in the vendor's window, as it last reported "
                  "(for the participant of its latest answer; 0 after a 429)", ["provider"])
_SLACK_S = 1.0


@dataclass(frozen=True, slots=True)
class Limit:
    requests: int
    per_s: float


class _Window:
    def __init__(self, limit: Limit) -> None:
        self.limit, self.sent = limit, deque[float]()

    def wait_s(self, now: float) -> float:
        span = self.limit.per_s + _SLACK_S
        while self.sent and self.sent[0] <= now - span:
            self.sent.popleft()
        return 0.0 if len(self.sent) < self.limit.requests else self.sent[0] + span - now

    def spent(self, now: float) -> bool:
        """No request of it is left inside the window: it holds nothing back any more."""
        return not self.sent or self.sent[-1] <= now - (self.limit.per_s + _SLACK_S)


class RateLimiter:
    """Holds each vendor call back until it stays under the participant's and the project's limits.

    ::

        limiter = RateLimiter(google_project_limit=settings.scheduler.google_project_limit)
        await limiter.acquire(Provider.FITBIT, research_id)  # before the call
        limiter.observe(Provider.FITBIT, research_id, quota_remaining(page.headers))  # after it
        limiter.block(Provider.FITBIT, research_id, limited.retry_after)  # on a 429

    :param google_project_limit: Google Health requests per minute for the whole project.
    :param clock: epoch seconds (tests pass a fake one).
    """

    def __init__(self, *, google_project_limit: int = google_health_spec.PER_PROJECT_LIMIT[0],
                 clock: Callable[[], float] = time.time) -> None:
        self._user_limits = {Provider.FITBIT: Limit(*fitbit_spec.PER_USER_LIMIT),  # the vendors' documented limits
                             Provider.GOOGLE_HEALTH: Limit(*google_health_spec.PER_USER_LIMIT)}
        self._project = {Provider.GOOGLE_HEALTH: _Window(Limit(google_project_limit,
                                                               google_health_spec.PER_PROJECT_LIMIT[1]))}
        self._clock = clock
        # per provider (one window length each), by latest request, oldest first: the spent
        # windows are at the front
        self._users: dict[Provider, OrderedDict[str, _Window]] = {p: OrderedDict() for p in self._user_limits}
        self._blocked: dict[tuple[Provider, str], float] = {}
        self._unblocks: list[tuple[float, tuple[Provider, str]]] = []  # a heap of (until, key) of the blocks

    def _forget_idle(self, now: float) -> None:
        """Drop the spent windows and the blocks whose reset has passed: neither holds anything back."""
        for users in self._users.values():
            while users:
                research_id, window = next(iter(users.items()))
                if not window.spent(now):
                    break  # the windows behind it sent later: none of them is spent either
                del users[research_id]
        while self._unblocks and self._unblocks[0][0] <= now:
            _, key = heapq.heappop(self._unblocks)
            if self._blocked.get(key, now + 1) <= now:  # not extended since (that pushed its own entry)
                del self._blocked[key]

    async def acquire(self, provider: Provider, research_id: str) -> None:
        """Wait until one more request for this participant stays under every limit, and count it."""
        key = (provider, research_id)
        users = self._users[provider]
        project = self._project.get(provider)
        while True:
            now = self._clock()
            self._forget_idle(now)
            # looked up again each time round: after a wait the window may have been dropped as spent
            user = users.get(research_id)
            if user is None:
                user = users[research_id] = _Window(self._user_limits[provider])
            blocked = self._blocked.get(key, 0.0) - now
            wait = max(blocked, user.wait_s(now), project.wait_s(now) if project else 0.0)
            if wait <= 0:
                user.sent.append(now)
                users.move_to_end(research_id)
                if project:
                    project.sent.append(now)
                return
            WAITS.labels(provider.value, "blocked" if blocked > 0 else "window").inc()
            await asyncio.sleep(min(wait, 5.0))  # re-check: a block may be lifted or extended meanwhile

    def observe(self, provider: Provider, research_id: str, remaining: int | None) -> None:
        """The vendor's own count after one of our requests: add the requests we did not send."""
        if remaining is not None:
            REMAINING.labels(provider.value).set(remaining)
        users = self._users[provider]
        user = users.get(research_id)
        if remaining is None or user is None:
            return
        now = self._clock()
        user.wait_s(now)  # forget what left the window
        # Every request the vendor counts in its window was sent within our (longer) window, and
        # ours holds every request of ours in flight: what the vendor counts beyond it is not ours.
        unseen = user.limit.requests - remaining - len(user.sent)
        if unseen > 0:
            user.sent.extend([now] * unseen)  # ``now`` is the latest time: the deque stays ordered
            users.move_to_end(research_id)
            UNSEEN.labels(provider.value).inc(unseen)

    def block(self, provider: Provider, research_id: str, seconds: float) -> None:
        """A 429: no request for this participant until the vendor's reset."""
        REMAINING.labels(provider.value).set(0)  # the vendor said: none left until its reset
        key = (provider, research_id)
        until = self._clock() + seconds
        if until > self._blocked.get(key, 0.0):
            self._blocked[key] = until
            heapq.heappush(self._unblocks, (until, key))
