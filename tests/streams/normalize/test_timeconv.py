"""Local wall-clock times → UTC (streams/normalize/timeconv.py): the zone of a page, DST gaps and
repeats, fixed offsets, and the many-page pass agreeing with the one-page rules."""

from __future__ import annotations

from datetime import UTC, date, datetime

import polars as pl
import pytest

from models.errors import DecodeError, Reason
from streams.normalize.timeconv import Zone, local_midnight_s, local_to_utc, pages_to_utc, time_reason, zone_of


def _utc(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp())


def test_the_zone_of_a_page() -> None:
    assert zone_of("Europe/Berlin", None).describe() == "Europe/Berlin"
    assert zone_of("Mars/Olympus", 3_600_000).describe() == "UTC+3600s"  # an unknown name falls back to the offset
    for timezone, field in (("Mars/Olympus", "timezone"), (None, "timezone")):
        with pytest.raises(DecodeError) as info:
            zone_of(timezone, None)
        assert info.value.field == field


def test_dst_gap_is_null_and_a_repeated_hour_is_told_apart_by_order() -> None:
    naive = pl.Series("t", ["2026-11-01T01:30:00", "2026-11-01T01:10:00"]).str.to_datetime()
    utc, offset = local_to_utc(pl.col("t"), Zone("America/New_York", None), ordered_day=True, rows=2)
    got = pl.DataFrame({"t": naive}).select(utc=utc, offset=offset)
    assert got.rows() == [(_utc("2026-11-01T05:30:00"), -14400), (_utc("2026-11-01T06:10:00"), -18000)]
    gap = pl.DataFrame({"t": pl.Series(["2026-03-08T02:30:00"]).str.to_datetime()})
    utc, _ = local_to_utc(pl.col("t"), Zone("America/New_York", None), ordered_day=False)
    assert gap.select(utc)["t"].to_list() == [None]


def test_many_pages_at_once_agree_with_each_page_alone() -> None:
    zones = [Zone("America/New_York", None), Zone(None, 19800), Zone("Europe/Berlin", None)]
    days = [date(2026, 3, 8), date(2026, 7, 1), date(2026, 10, 25)]  # DST days in New York and Berlin
    seconds = list(range(0, 86400, 1800))
    frame = pl.DataFrame({"page": [p for p in range(3) for _ in seconds],
                          "naive": [local_midnight_s(days[p]) + s for p in range(3) for s in seconds]})
    together = pages_to_utc(frame, zones, ordered_day=True).sort("page", maintain_order=True)
    for page, zone in enumerate(zones):
        alone = frame.filter(pl.col("page") == page)
        utc, offset = local_to_utc(pl.from_epoch("naive", time_unit="s"), zone, ordered_day=True, rows=alone.height)
        want = alone.select(ts=utc, offset=offset)
        assert together.filter(pl.col("page") == page).select("ts", "offset").equals(want)


def test_time_reason_and_local_midnight() -> None:
    frame = pl.DataFrame({"local": [None, 1, 1], "utc": [None, None, 1]})
    assert frame.select(r=time_reason(pl.col("local"), pl.col("utc")))["r"].to_list() == [
        Reason.BAD_TIME.value, Reason.NONEXISTENT_LOCAL_TIME.value, None]
    assert local_midnight_s(date(1970, 1, 2)) == 86400
