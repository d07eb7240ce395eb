"""Shared by the daily tests: pages of a synthetic cohort, normalized, applied in chunks."""

from __future__ import annotations

import random
from collections.abc import Iterable
from datetime import date

from connectors.simulator.cohort import SyntheticCohort
from models.daily import DailySummary
from models.providers import Provider
from models.raw import RawPage
from models.samples import SampleBatch
from streams.daily.process import DayPolicy, apply_batches
from streams.normalize import normalize
from tests.builders import SECRET

IGNORED = {"revision", "duplicates", "revisions"}  # revision counters: how often, not what


def cohort_pages(cohort: SyntheticCohort, days: Iterable[date]) -> list[tuple[str, RawPage]]:
    pages = []
    for n, person in enumerate(cohort.participant_ids):
        zone = cohort.timezone(person)
        for day in days:
            if n % 2 == 0:
                bodies = [("activities-steps-intraday", cohort.fitbit_steps_intraday(person, day)),
                          ("activities-heart-intraday", cohort.fitbit_heart_intraday(person, day))]
                provider = Provider.FITBIT
            else:
                bodies = [("steps", cohort.google_steps(person, day)),
                          ("heart-rate", cohort.google_heart_rate(person, day))]
                provider = Provider.GOOGLE_HEALTH
            for data_type, body in bodies:
                pages.append((f"R{person[1:]}", RawPage(provider=provider, data_type=data_type, date=day.isoformat(),
                                                        body=body, timezone=zone, detail="1min")))
    return pages


def batches_of(pages: Iterable[tuple[str, RawPage]]) -> list[SampleBatch]:
    return [b for rid, page in pages for b in normalize(page, rid, secret=SECRET).batches]


class Store:
    """The days table and the daily topic, in memory (latest summary per key wins)."""

    def __init__(self, policy: DayPolicy | None = None) -> None:
        self.policy = policy or DayPolicy()
        self.days: dict[str, bytes] = {}
        self.daily: dict[str, DailySummary] = {}
        self.letters: list[object] = []
        self.intraday: list[SampleBatch] = []  # what went to the ``intraday`` topic

    def apply(self, batches: list[SampleBatch], *, watermark: int, chunk: int = 64) -> None:
        for start in range(0, len(batches), chunk):
            part = batches[start:start + chunk]
            keys = {f"{b.research_id}|{b.local_date}" for b in part}
            update = apply_batches(part, {k: self.days[k] for k in keys if k in self.days}, policy=self.policy,
                                   watermark=watermark)
            self.days.update(update.states)
            self.daily.update({s.key: s for s in update.summaries})
            self.letters += update.letters
            self.intraday += update.intraday + [part[i] for i in update.forwarded]

    def intraday_samples(self) -> list[tuple[str, str, int, float]]:
        return sorted((b.research_id, b.metric.value, t, v) for b in self.intraday
                      for t, v in zip(b.timestamps, b.values, strict=True))

    def comparable(self) -> dict[str, dict[str, object]]:
        return {key: {f: getattr(s, f) for f in s.__dataclass_fields__ if f not in IGNORED}
                for key, s in self.daily.items()}


def shuffled(items: list[SampleBatch], seed: int) -> list[SampleBatch]:
    copy = list(items)
    random.Random(seed).shuffle(copy)
    return copy
