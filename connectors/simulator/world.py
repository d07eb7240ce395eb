"""The vendors' side of the world: accounts, what each device has synced, tokens, quotas, faults.

Pure state and rules, no HTTP: the route modules (``app.py``) map requests onto it. Time is real time; the
cohort's data covers ``days`` local days ending yesterday, and each account's device has synced
it up to ``synced_until`` (some lag days behind and catch up in bursts, see ``sync_tick``).

Some devices stall (``stalled_share``): they stopped syncing 1-5 days before the data ends, so the
vendor has nothing of those days and their last sync stays old; half sync again a few rounds into
the run (the days arrive late, announced by webhook), half not within the run. A participant whose
tracker never syncs (``SyntheticCohort.never_syncs``) last synced weeks before the first day.
Neither keeps ``fully_synced`` from being true: it asks whether what will arrive has arrived.

Who hears of a change follows the vendors: a Fitbit account only once subscribed; a Google one
per the subscriber's policy, ``automatic`` (every account that granted consent and did not
revoke it, with no subscription call: "notifications are sent to all subscribers with an
AUTOMATIC policy … provided the user has granted the necessary consents") or ``manual`` (only
subscribed accounts). Samples withdrawn at the vendor (``delete_samples``) are kept in
``deletions`` for the pages to leave out, and announced by a queued DELETE notification
(``take_changes``); ``restore_samples`` brings them back with an UPSERT.
"""

from __future__ import annotations

import hashlib
import random
import secrets
import time
import zoneinfo
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Literal

from connectors.simulator.cohort import SyntheticCohort
from connectors.vendors import fitbit_spec, google_health_spec
from models.providers import Provider

__all__ = ["Account", "Faults", "Grant", "Quota", "SubscriptionPolicy", "VendorChange", "World"]

FITBIT_HOURLY_LIMIT = fitbit_spec.PER_USER_LIMIT[0]
# A device that has caught up re-sends a day it already sent a few times, then goes quiet: the
# history is finite, so a run (the demo) can tell when everything has arrived.
_RESYNCS_PER_DEVICE = 2
GOOGLE_USER_MINUTE_LIMIT = google_health_spec.PER_USER_LIMIT[0]
SubscriptionPolicy = Literal["automatic", "manual"]


@dataclass
class Account:
    participant_id: str
    provider: Provider
    user_id: str  # the vendor's user id (Fitbit encodedId / Google healthUserId)
    legacy_user_id: str  # Google's legacyUserId: the old Fitbit id
    timezone: str
    synced_until: float  # epoch seconds: samples before this instant are on the vendor's servers
    revoked: bool = False
    subscribed: bool = False
    resyncs: int = 0  # duplicate syncs so far (see ``World.sync_tick``)
    # sync rounds until a stalled device syncs again (0: it syncs as usual; None: not within the run)
    resumes_in: int | None = 0


@dataclass(frozen=True, slots=True)
class VendorChange:
    """A change of stored samples the vendor announces by notification: samples of ``data_type``
    in [start, end) (epoch seconds) were withdrawn (DELETE) or are there again (UPSERT)."""

    account: Account
    operation: Literal["UPSERT", "DELETE"]
    data_type: str
    start: float
    end: float


@dataclass(frozen=True)
class Grant:
    account: Account
    expires_at: float
    scope: str


@dataclass
class Faults:
    error_rate: float = 0.0  # share of data calls answered 500/503
    timeout_rate: float = 0.0  # share of data calls that hang for ``hang_s`` before answering
    hang_s: float = 35.0
    latency_s: float = 0.0  # added to every data call
    down_until: float = 0.0  # time.monotonic() until which every vendor endpoint answers 503 (an outage)

    def down(self) -> bool:
        """Whether the simulated vendor is in an outage now (``/_sim/outage``)."""
        return time.monotonic() < self.down_until


@dataclass
class Quota:
    """Fixed-window request counters, as the vendors describe their limits."""

    fitbit_per_hour: int = FITBIT_HOURLY_LIMIT
    google_per_minute: int = GOOGLE_USER_MINUTE_LIMIT
    google_project_per_minute: int = google_health_spec.PER_PROJECT_LIMIT[0]
    used: Counter[tuple[str, ...]] = field(default_factory=Counter)

    def take(self, provider: Provider, user_id: str, now: float) -> tuple[bool, int, float, int]:
        """Count one request: (allowed, limit, seconds to reset, remaining)."""
        if provider is Provider.FITBIT:
            window = int(now // 3600)
            key = ("f", user_id, str(window))
            self.used[key] += 1
            remaining = self.fitbit_per_hour - self.used[key]
            return remaining >= 0, self.fitbit_per_hour, (window + 1) * 3600 - now, max(remaining, 0)
        window = int(now // 60)
        user, project = ("g", user_id, str(window)), ("p", str(window))
        self.used[user] += 1
        self.used[project] += 1
        remaining = min(self.google_per_minute - self.used[user], self.google_project_per_minute - self.used[project])
        return remaining >= 0, self.google_per_minute, (window + 1) * 60 - now, max(remaining, 0)

    def forget_before(self, now: float) -> None:
        """Drop counters of past windows (the simulator runs for hours in the demo)."""
        hour, minute = str(int(now // 3600)), str(int(now // 60))
        for key in [k for k in self.used if k[-1] not in (hour, minute)]:
            del self.used[key]


class World:
    """The simulated vendors' state: accounts, codes and tokens, quotas, faults, device syncs.

    ::

        world = World(SyntheticCohort(100, seed=7), days=14)
        account = world.account(Provider.FITBIT, "P0000000001")  # created on first consent
        steps, rates = world.series(account.participant_id, world.last_day)

    :param cohort: whose synthetic data the accounts serve.
    :param days: how many local days of data, ending yesterday.
    :param seed: makes vendor user ids, lags and syncs reproducible.
    :param late_share: share of devices that lag 1-3 days behind and catch up in a burst.
    :param duplicate_share: chance per sync round that a synced device sends a day again.
    :param stalled_share: share of devices that stopped syncing 1-5 days before the end (module docstring).
    :param low_battery_share: share of devices whose battery is below 20% (``devices.py``).
    :param token_lifetime_s: access-token lifetime (None: each vendor's own, 8 h or 1 h).
    :param subscription_policy: the Google subscriber's policy (module docstring).
    """

    def __init__(self, cohort: SyntheticCohort, *, days: int, seed: int = 0, late_share: float = 0.25,
                 duplicate_share: float = 0.1, stalled_share: float = 0.0, low_battery_share: float = 0.0,
                 token_lifetime_s: float | None = None,
                 subscription_policy: SubscriptionPolicy = "automatic") -> None:
        self.cohort = cohort
        self.last_day = datetime.now(UTC).date() - timedelta(days=1)
        self.first_day = self.last_day - timedelta(days=days - 1)
        # every sample of the cohort lies before this instant (the last local day ends by then in any zone)
        self.data_end = datetime.combine(self.last_day + timedelta(days=2), datetime.min.time(), UTC).timestamp()
        self.late_share, self.duplicate_share = late_share, duplicate_share
        self.stalled_share, self.low_battery_share = stalled_share, low_battery_share
        self.pairs_devices = True  # False: accounts list no paired devices (people who sync from a phone only)
        self.token_lifetime_s = token_lifetime_s
        self.subscription_policy: SubscriptionPolicy = subscription_policy
        self.faults = Faults()
        self.quota = Quota()
        self.stats: Counter[str] = Counter()
        # data calls being answered, per (vendor, user): two at once count as ``overlapping_requests_<vendor>``
        self.answering: Counter[tuple[Provider, str]] = Counter()
        self._rng = random.Random(seed)
        self._seed = seed
        self._accounts: dict[tuple[Provider, str], Account] = {}
        self._by_user: dict[tuple[Provider, str], Account] = {}
        self.codes: dict[str, tuple[Account, str, str, str, float]] = {}  # code -> account, client, redirect, challenge
        self.access: dict[str, Grant] = {}
        self.refresh: dict[str, Grant] = {}
        self._series: OrderedDict[tuple[str, date], tuple[_Packed, _Packed]] = OrderedDict()
        # (participant_id, data_type) -> withdrawn [start, end) intervals, epoch seconds
        self.deletions: dict[tuple[str, str], list[tuple[float, float]]] = {}
        self._changes: list[VendorChange] = []  # announced by the next delivery round

    # ------------------------------------------------------------------ accounts
    def account(self, provider: Provider, participant_id: str) -> Account:
        """The participant's account at this vendor (created on first consent, deterministically)."""
        key = (provider, participant_id)
        if key not in self._accounts:
            digest = hashlib.sha256(f"{self._seed}|{participant_id}".encode()).hexdigest()
            fitbit_id = digest[:6].upper()
            user_id = fitbit_id if provider is Provider.FITBIT else str(int(digest[6:22], 16))[:18]
            rng = random.Random(f"{self._seed}|{participant_id}|lag")
            lag = rng.uniform(1, 3) * 86400 if rng.random() < self.late_share else 0.0
            zone = self.cohort.timezone(participant_id)
            account = Account(participant_id, provider, user_id, fitbit_id, zone, synced_until=self.data_end - lag)
            stall = random.Random(f"{self._seed}|{participant_id}|stall")
            if self.cohort.never_syncs(participant_id):  # paired weeks ago, silent since
                account.synced_until = self._local_midnight(zone, self.first_day) - stall.uniform(7, 30) * 86400
                account.resumes_in = None
            elif stall.random() < self.stalled_share:  # silent since the local midnight 1-5 days before the end
                stopped = max(self.first_day, self.last_day - timedelta(days=stall.randint(0, 4)))
                account.synced_until = self._local_midnight(zone, stopped)
                account.resumes_in = stall.randint(2, 10) if stall.random() < 0.5 else None
            self._accounts[key] = account
            self._by_user[(provider, user_id)] = account
        return self._accounts[key]

    def accounts(self) -> list[Account]:
        return list(self._accounts.values())

    def find_account(self, provider: Provider, participant_id: str) -> Account | None:
        """The participant's account if they ever consented (``account`` would create it)."""
        return self._accounts.get((provider, participant_id))

    def notifies(self, account: Account) -> bool:
        """Whether the vendor tells our subscriber of this account's changes (module docstring)."""
        if account.revoked:
            return False
        automatic = account.provider is Provider.GOOGLE_HEALTH and self.subscription_policy == "automatic"
        return automatic or account.subscribed

    def revoke(self, account: Account) -> None:
        """The participant revoked our access at the vendor: every token of theirs stops working."""
        account.revoked = True
        for table in (self.access, self.refresh):
            for token in [t for t, g in table.items() if g.account is account]:
                del table[token]

    # ------------------------------------------------------------------ tokens
    def issue_code(self, account: Account, client_id: str, redirect_uri: str, challenge: str) -> str:
        code = secrets.token_urlsafe(24)
        self.codes[code] = (account, client_id, redirect_uri, challenge, time.time() + 600)  # valid 10 minutes
        return code

    def issue_tokens(self, account: Account, scope: str) -> tuple[str, str, int]:
        lifetime = self.token_lifetime_s or (28800 if account.provider is Provider.FITBIT else 3600)
        access, refresh = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        self.access[access] = Grant(account, time.time() + lifetime, scope)
        self.refresh[refresh] = Grant(account, float("inf"), scope)
        account.revoked = False
        return access, refresh, int(lifetime)

    def use_refresh(self, token: str) -> Grant | None:
        """Refresh tokens are single-use: the first use consumes it, a second finds nothing."""
        return self.refresh.pop(token, None)

    # ------------------------------------------------------------------ data
    def series(self, participant_id: str, day: date) -> tuple[list[int], list[int | None]]:
        """The participant-day's minute steps and heart rates (None: off-wrist)."""
        key = (participant_id, day)
        cached = self._series.get(key)
        if cached is None:
            steps = self.cohort.minute_steps(participant_id, day)
            rates = self.cohort.minute_heart_rate(participant_id, day, steps)
            cached = self._series[key] = _pack(steps), _pack(rates)
            if len(self._series) > _SERIES_CACHED:
                self._series.popitem(last=False)
        else:
            self._series.move_to_end(key)
        return [v or 0 for v in cached[0]], [v or None for v in cached[1]]

    def midnight(self, account: Account, day: date) -> float:
        return self._local_midnight(account.timezone, day)

    @staticmethod
    def _local_midnight(zone: str, day: date) -> float:
        return datetime.combine(day, datetime.min.time(), zoneinfo.ZoneInfo(zone)).timestamp()

    def stalled(self, account: Account) -> bool:
        """Whether the account's device does not sync again within the run (stalled, or never syncs)."""
        return account.resumes_in is None

    def visible_minutes(self, account: Account, day: date) -> int:
        """How many minutes of the local ``day`` the device has synced (0..1440)."""
        if not self.first_day <= day <= self.last_day:
            return 0
        return max(0, min(1440, int((account.synced_until - self.midnight(account, day)) // 60)))

    # ------------------------------------------------------------------ samples withdrawn at the vendor
    def delete_samples(self, account: Account, data_type: str, start: float, end: float) -> None:
        """The participant deleted ``data_type`` samples in [start, end) at the vendor: the pages
        leave them out, and Google announces it with a DELETE notification."""
        if not start < end:
            raise ValueError("a deleted interval must end after it starts")
        self.deletions.setdefault((account.participant_id, data_type), []).append((start, end))
        self._announce(VendorChange(account, "DELETE", data_type, start, end))
        self.stats["deletions"] += 1

    def restore_samples(self, account: Account, data_type: str, start: float, end: float) -> bool:
        """The deleted interval is there again (re-sent by the device): an UPSERT announces it.
        False when no such interval was deleted."""
        withdrawn = self.deletions.get((account.participant_id, data_type), [])
        if (start, end) not in withdrawn:
            return False
        withdrawn.remove((start, end))
        if not withdrawn:
            del self.deletions[(account.participant_id, data_type)]
        self._announce(VendorChange(account, "UPSERT", data_type, start, end))
        self.stats["restorations"] += 1
        return True

    def deleted(self, participant_id: str, data_type: str) -> list[tuple[float, float]]:
        """The withdrawn [start, end) intervals (epoch seconds) of the participant's ``data_type``."""
        return list(self.deletions.get((participant_id, data_type), []))

    def take_changes(self) -> list[VendorChange]:
        """The announced changes not yet delivered; the delivery takes them all at once."""
        changes, self._changes = self._changes, []
        return changes

    def _announce(self, change: VendorChange) -> None:
        if change.account.provider is Provider.GOOGLE_HEALTH:  # Fitbit sends no deletion notifications
            self._changes.append(change)

    # ------------------------------------------------------------------ devices syncing
    def sync_tick(self) -> list[tuple[Account, list[date]]]:
        """One round of device syncs: late devices catch up in a burst (days at once), a stalled one
        once its rounds are up (never, for one that stays stalled), a few synced ones sync the same
        data again (at most ``_RESYNCS_PER_DEVICE`` times each). Returns the (account, local dates)
        that changed."""
        self.quota.forget_before(time.time())
        changed = []
        for account in self._accounts.values():
            if not self.notifies(account):  # nobody would hear of it: no notification to test
                continue
            if account.resumes_in is None:
                continue
            if account.resumes_in:
                account.resumes_in -= 1
                if not account.resumes_in:
                    changed.append((account, self._catch_up(account)))
                    self.stats["burst_syncs"] += 1
                    self.stats["stalls_ended"] += 1
                continue
            if account.synced_until < self.data_end and self._rng.random() < 0.5:
                changed.append((account, self._catch_up(account)))
                self.stats["burst_syncs"] += 1
            elif account.resyncs < _RESYNCS_PER_DEVICE and self._rng.random() < self.duplicate_share:
                account.resyncs += 1
                changed.append((account, [self.first_day + timedelta(
                    days=self._rng.randrange((self.last_day - self.first_day).days + 1))]))
                self.stats["duplicate_syncs"] += 1
        return changed

    def _catch_up(self, account: Account) -> list[date]:
        """The device sends everything it holds: the local days from its last sync on."""
        first = datetime.fromtimestamp(account.synced_until, zoneinfo.ZoneInfo(account.timezone)).date()
        account.synced_until = self.data_end
        return _days(max(first, self.first_day), self.last_day)

    def fully_synced(self) -> bool:
        """Whether every device has sent what it will send within the run (a stalled one: nothing)."""
        return all(a.synced_until >= self.data_end for a in self._accounts.values()
                   if not a.revoked and not self.stalled(a))


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


_Packed = bytes | list[int] | list[int | None]
# Generating a participant-day costs more than serving it: keep many, a byte per minute (1440 B).
_SERIES_CACHED = 1 << 16


def _pack(values: list[int] | list[int | None]) -> _Packed:
    """One byte per minute (None as 0: a heart rate is never 0), else the list as it is."""
    try:
        return bytes(v or 0 for v in values)
    except ValueError:
        return values
