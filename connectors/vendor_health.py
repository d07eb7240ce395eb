"""Whether a vendor is up: a circuit breaker per provider, shared by every fetch of a process.

One participant's 503 is that call's trouble, retried with backoff. A vendor answering 503 to
everyone is an outage, and retrying every request on its own then does harm: each attempt spends
the participant's rate budget (Fitbit's 150 calls an hour), and requests give up after their last
attempt while the vendor is still down. So after ``threshold`` unavailable answers in a row from
one vendor (no success in between) the vendor counts as down: calls wait here, spending neither
attempts nor budget, until one probe call gets through. The wait between probes doubles from
``base_delay`` up to ``max_delay``; the callers take turns to probe, and a failed probe counts as
one of its caller's attempts (so a request whose own day keeps failing still gives up). The
scheduler also skips its polls of a vendor that is down.

``connector_vendor_down{provider}`` is 1 while a vendor counts as down;
``connector_vendor_outages_total{provider}`` counts how often it went down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from models.providers import Provider
from runtime.metrics import counter, gauge

__all__ = ["VendorHealth"]

logger = logging.getLogger(__name__)

DOWN = gauge("connector_vendor_down", "1 while a vendor counts as down (calls wait for a probe to get through)",
             ["provider"])
OUTAGES = counter("connector_vendor_outages_total", "Times a vendor went down: unavailable answers in a row",
                  ["provider"], initial=[(p.value,) for p in Provider])


@dataclass
class _State:
    failures: int = 0  # unavailable answers in a row
    down_since: float | None = None
    reopened: int = 0  # probes that failed during this outage
    until: float = 0.0  # no call before this (clock) while down
    probe_until: float = 0.0  # a probe is out until then (a probe that never reports expires)
    changed: asyncio.Event = field(default_factory=asyncio.Event)


class VendorHealth:
    """``await wait(p)`` before a call; ``failed(p)`` after an unavailable answer (True: the
    vendor is down, so the attempt does not count); ``succeeded(p)`` after any answer that is not."""

    def __init__(self, *, threshold: int = 5, base_delay: float = 1.0, max_delay: float = 60.0,
                 probe_timeout: float = 90.0, clock: Callable[[], float] = time.monotonic) -> None:
        if threshold < 1:
            raise ValueError("threshold must be at least 1")
        self.threshold, self.base_delay, self.max_delay, self._clock = threshold, base_delay, max_delay, clock
        self.probe_timeout = probe_timeout
        self._states: dict[Provider, _State] = {}
        for provider in Provider:
            DOWN.labels(provider.value).set(0)

    def down(self, provider: Provider) -> bool:
        state = self._states.get(provider)
        return state is not None and state.down_since is not None

    async def wait(self, provider: Provider) -> bool:
        """Return at once while ``provider`` is up (False); while down, once a probe got through
        (False) or when this caller is to make the probe call (True)."""
        state = self._state(provider)
        while state.down_since is not None:
            now = self._clock()
            if now < state.until:
                await asyncio.sleep(state.until - now)
            elif now >= state.probe_until:  # this caller's call is the probe; the others wait for its answer
                state.probe_until = now + self.probe_timeout
                return True
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(state.changed.wait(), state.probe_until - now)
        return False

    def failed(self, provider: Provider) -> bool:
        """An unavailable answer (5xx, timeout, a token endpoint that failed). True when the vendor
        is down (now or already): the caller should not count it as one of its attempts."""
        state = self._state(provider)
        state.failures += 1
        if state.down_since is None and state.failures < self.threshold:
            return False
        if state.down_since is None:
            state.down_since = self._clock()
            OUTAGES.labels(provider.value).inc()
            DOWN.labels(provider.value).set(1)
            logger.warning("%s answers unavailable to every call: waiting for it to come back (probing with backoff)",
                           provider.value)
        elif state.probe_until:
            state.reopened += 1
        state.probe_until = 0.0
        delay = min(self.max_delay, self.base_delay * 2 ** state.reopened)
        state.until = self._clock() + delay * random.uniform(0.8, 1.2)  # noqa: S311 - jitter, not a secret
        self._tell(state)
        return True

    def succeeded(self, provider: Provider) -> None:
        """Any answer that is not "unavailable": the vendor is up."""
        state = self._state(provider)
        state.failures = 0
        if state.down_since is not None:
            logger.warning("%s is back after %.0f s", provider.value, self._clock() - state.down_since)
            state.down_since, state.reopened, state.probe_until = None, 0, 0.0
            DOWN.labels(provider.value).set(0)
            self._tell(state)

    def _state(self, provider: Provider) -> _State:
        found = self._states.get(provider)
        if found is None:
            found = self._states[provider] = _State()
        return found

    @staticmethod
    def _tell(state: _State) -> None:
        """Wake whoever waits on the state as it was (each waiter looks again)."""
        state.changed.set()
        state.changed = asyncio.Event()
