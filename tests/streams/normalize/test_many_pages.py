"""Many pages normalized together give exactly what each page gives alone: the shared
vectorised pass must not let pages, zones or DST days leak into one another."""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

from connectors.simulator.cohort import SyntheticCohort
from models.errors import DecodeError
from models.providers import Provider
from models.raw import RawPage
from streams.normalize import Normalized, normalize, normalize_pages
from tests.builders import SECRET, fitbit_intraday_body, fitbit_page, google_page, minute_dataset

COHORT = SyntheticCohort(4, seed=11)


def _corpus() -> list[tuple[RawPage, str]]:
    pages: list[tuple[RawPage, str]] = []
    for first in (date(2026, 3, 7), date(2026, 10, 31)):  # both DST transitions, in the cohort's several zones
        for day in (first + timedelta(days=k) for k in range(3)):
            for n, person in enumerate(COHORT.participant_ids):
                zone = COHORT.timezone(person)
                for data_type, body in (("activities-steps-intraday", COHORT.fitbit_steps_intraday(person, day)),
                                        ("activities-heart-intraday", COHORT.fitbit_heart_intraday(person, day))):
                    pages.append((RawPage(provider=Provider.FITBIT, data_type=data_type, date=day.isoformat(),
                                          body=body, timezone=zone), f"R{n}"))
                pages.append((RawPage(provider=Provider.GOOGLE_HEALTH, data_type="heart-rate", date=day.isoformat(),
                                      body=COHORT.google_heart_rate(person, day), timezone=zone), f"R{n}"))
    day = date(2026, 11, 1)
    odd = [{"time": "00:00:00", "value": 15}, {"time": "01:30:00", "value": "80"}, {"time": "01:10:00", "value": 81},
           {"time": "25:00:00", "value": 70}, {"value": 70}, "junk", {"time": "1:00:00", "value": 3}]
    pages += [
        (fitbit_page("activities-heart-intraday", fitbit_intraday_body(
            "heart", day, odd, daily={"restingHeartRate": 61, "heartRateZones": [{"name": "Peak", "min": 150}]}),
            day=day), "R9"),
        (fitbit_page("activities-steps-intraday", fitbit_intraday_body("steps", day, minute_dataset([1, 2]), daily="3"),
                     day=day, timezone=None, utc_offset_ms=-18_000_000), "R9"),
        (fitbit_page("activities-steps-intraday", fitbit_intraday_body("steps", day, []), day=day), "R9"),
        (fitbit_page("activities-steps-intraday", b"not json", day=day), "R9"),
        (fitbit_page("activities-steps-intraday", fitbit_intraday_body("steps", day, minute_dataset([1])), day=day,
                     timezone=None), "R9"),
        (fitbit_page("activities-steps-intraday", fitbit_intraday_body("steps", day, minute_dataset([1])), day=day),
         ""),
        (google_page("heart-rate", [5, {"heartRate": {"beatsPerMinute": 70, "sampleTime": {
            "physicalTime": "2026-05-05T23:59:00Z", "utcOffset": "7200s"}}}]), "R9"),
    ]
    random.Random(5).shuffle(pages)
    return pages


def _comparable(result: Normalized | Exception) -> Any:
    if isinstance(result, DecodeError):
        return ("error", result.reason, result.field)
    assert isinstance(result, Normalized)
    return (result.input_samples, [b.to_dict() for b in result.batches],
            [(r.reason, r.count, r.detail, r.original) for r in result.rejects])


def test_many_pages_at_once_equal_each_page_alone() -> None:
    pages = _corpus()
    alone = []
    for page, research_id in pages:
        try:
            alone.append(_comparable(normalize(page, research_id, secret=SECRET)))
        except DecodeError as error:
            alone.append(_comparable(error))
    together = [_comparable(r) for r in normalize_pages(pages, secret=SECRET)]
    assert together == alone
    assert sum(1 for r in alone if r[0] == "error") == 3
    assert sum(len(r[1]) for r in alone if r[0] != "error") > 60  # batches, DST days split in two
