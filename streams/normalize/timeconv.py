"""Local wall-clock times → UTC, vectorised, DST-aware.

Fitbit intraday pages give ``HH:MM:SS`` without date or offset; the date comes from the
request and the zone from the participant's profile. With an IANA zone, a fall-back day's
repeated hour is told apart by order (times going backwards mark the second pass), and a
spring-forward day's missing hour does not exist (such samples are rejected, not shifted).
With only a fixed ``offsetFromUTCMillis`` every time uses that offset.
"""

from __future__ import annotations

import zoneinfo
from collections import defaultdict
from collections.abc import Sequence
from datetime import date
from typing import Literal

import polars as pl

from models.errors import DecodeError, Reason

__all__ = ["Zone", "local_midnight_s", "local_to_utc", "pages_to_utc", "time_reason", "zone_of"]

_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


class Zone:
    """A participant's time zone: an IANA name, or else a fixed offset in seconds."""

    __slots__ = ("name", "offset_s")

    def __init__(self, name: str | None, offset_s: int | None) -> None:
        self.name = name
        self.offset_s = offset_s

    def describe(self) -> str:
        return self.name or f"UTC{self.offset_s:+d}s"


def zone_of(timezone: str | None, utc_offset_ms: int | None) -> Zone:
    """The zone of a page's metadata; a DecodeError when neither is usable."""
    if timezone:
        try:
            zoneinfo.ZoneInfo(timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            if utc_offset_ms is None:
                raise DecodeError(f"{timezone!r} is not an IANA time zone", reason=Reason.BAD_FIELD,
                                  field="timezone") from None
        else:
            return Zone(timezone, None)
    if utc_offset_ms is not None:
        return Zone(None, int(utc_offset_ms) // 1000)
    raise DecodeError(
        "no time zone or UTC offset for local wall-clock times (archives: add FITBIT/profile/<id>/profile.json)",
        reason=Reason.MISSING_FIELD, field="timezone",
    )


def local_midnight_s(day: date) -> int:
    """The local midnight of ``day`` as naive epoch seconds."""
    return (day.toordinal() - _EPOCH_ORDINAL) * 86400


def time_reason(local: pl.Expr, utc: pl.Expr) -> pl.Expr:
    """Why a row has no UTC time: its local time was unreadable, or does not exist (a DST gap)."""
    return (pl.when(local.is_null()).then(pl.lit(Reason.BAD_TIME.value))
            .when(utc.is_null()).then(pl.lit(Reason.NONEXISTENT_LOCAL_TIME.value))
            .otherwise(pl.lit(None, dtype=pl.String)))


def local_to_utc(local: pl.Expr, zone: Zone, *, ordered_day: bool, rows: int = 1,
                 group: str | None = None) -> tuple[pl.Expr, pl.Expr]:
    """Expressions for (UTC epoch seconds, offset seconds) of naive local datetimes.

    ``ordered_day``: the rows are one day's times in recorded order, so a time earlier than
    its predecessor starts the second pass through a repeated (fall-back) hour.
    Non-existent local times (spring-forward gap) give nulls. ``rows``: the frame's height
    (Polars 2.1 panics on zone conversion with a per-row ``ambiguous`` over zero rows).
    ``group``: a column telling the days of a many-day frame apart (order is per group).
    """
    naive_epoch = local.dt.epoch("s")
    if rows == 0:
        return naive_epoch, naive_epoch
    if zone.name is None:
        offset = pl.lit(zone.offset_s, dtype=pl.Int64)
        return naive_epoch - offset, offset
    if ordered_day:
        second_pass = (naive_epoch.diff().fill_null(0) < 0).cum_sum() > 0
        second_pass = second_pass.over(group) if group else second_pass
        ambiguous = pl.when(second_pass).then(pl.lit("latest")).otherwise(pl.lit("earliest"))
    else:
        ambiguous = pl.lit("earliest")
    aware = local.dt.replace_time_zone(zone.name, ambiguous=ambiguous, non_existent="null")
    utc = aware.dt.epoch("s")
    return utc, naive_epoch - utc


def pages_to_utc(frame: pl.DataFrame, zones: Sequence[Zone], *, ordered_day: bool) -> pl.DataFrame:
    """Add ``ts`` (UTC epoch s) and ``offset`` (s) to the rows of many pages at once.

    ``frame`` has ``page`` (index into ``zones``) and ``naive`` (local wall-clock time as epoch
    seconds, null when unusable); each page is one day (``ordered_day``) or a set of times, as
    in ``local_to_utc``. Rows may come back in another order, but a page's rows keep theirs.

    Most pages lie wholly inside one UTC offset: their rows need only a subtraction. The zone
    rules run row by row only on pages that touch a transition (two days a year), which is what
    makes normalizing thousands of pages cost little more than parsing them.
    """
    offsets = _steady_offsets(frame, zones)
    steady = frame["page"].is_in(list(offsets))
    fixed = pl.Series([z.name is None for z in zones], dtype=pl.Boolean)
    page_offset = pl.Series([offsets.get(i) for i in range(len(zones))], dtype=pl.Int64)
    fast = frame.filter(steady).with_columns(off=pl.lit(page_offset).gather(pl.col("page")),
                                                fixed=pl.lit(fixed).gather(pl.col("page")))
    parts = [fast.with_columns(ts=pl.col("naive") - pl.col("off"),
                               offset=pl.when(pl.col("fixed") | pl.col("naive").is_not_null()).then(pl.col("off")))
             .drop("off", "fixed")]
    slow = frame.filter(~steady)
    by_zone: dict[str, list[int]] = defaultdict(list)
    for page in slow["page"].unique(maintain_order=True).to_list():
        by_zone[zones[page].name or ""].append(page)
    for name, pages in by_zone.items():
        part = slow.filter(pl.col("page").is_in(pages))
        utc, offset = local_to_utc(pl.from_epoch("naive", time_unit="s"), Zone(name, None), ordered_day=ordered_day,
                                   rows=part.height, group="page")
        parts.append(part.with_columns(ts=utc, offset=offset))
    return pl.concat(parts, how="vertical") if len(parts) > 1 else parts[0]


def _steady_offsets(frame: pl.DataFrame, zones: Sequence[Zone]) -> dict[int, int]:
    """Pages whose every time has one UTC offset, with that offset (fixed zones: all of theirs)."""
    out = {i: z.offset_s for i, z in enumerate(zones) if z.name is None and z.offset_s is not None}
    bounds = frame.group_by("page").agg(lo=pl.col("naive").min(), hi=pl.col("naive").max())
    named: dict[str, list[int]] = defaultdict(list)
    for i, z in enumerate(zones):
        if z.name is not None:
            named[z.name].append(i)
    for name, pages in named.items():
        span = bounds.filter(pl.col("page").is_in(pages) & pl.col("lo").is_not_null())

        def offset_at(col: str, ambiguous: Literal["earliest", "latest"], name: str = name) -> pl.Expr:
            utc = pl.from_epoch(col, time_unit="s").dt.replace_time_zone(name, ambiguous=ambiguous,
                                                                        non_existent="null").dt.epoch("s")
            return pl.col(col) - utc

        # Both ends unambiguous, existing and equal, less than a day apart: no transition in between.
        checked = span.select("page", a=offset_at("lo", "earliest"), b=offset_at("lo", "latest"),
                              c=offset_at("hi", "earliest"), d=offset_at("hi", "latest"),
                              short=(pl.col("hi") - pl.col("lo")) < 86400)
        same = checked.filter(pl.col("short") & (pl.col("a") == pl.col("b")) & (pl.col("a") == pl.col("c"))
                              & (pl.col("a") == pl.col("d")))
        out.update(zip(same["page"].to_list(), same["a"].to_list(), strict=True))
        # Pages with no usable time at all: any offset does (their rows are rejected either way).
        out.update(dict.fromkeys(set(pages) - set(span["page"].to_list()), 0))
    return out
