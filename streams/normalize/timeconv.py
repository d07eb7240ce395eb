"""Local wall-clock times → UTC, vectorised, DST-aware.

Fitbit intraday pages give ``HH:MM:SS`` without date or offset; the date comes from the
request and the zone from the participant's profile. With an IANA zone, a fall-back day's
repeated hour is told apart by order (times going backwards mark the second pass), and a
spring-forward day's missing hour does not exist (such samples are rejected, not shifted).
With only a fixed ``offsetFromUTCMillis`` every time uses that offset.
"""

from __future__ import annotations

import zoneinfo

import polars as pl

from models.errors import DecodeError, Reason

__all__ = ["Zone", "local_to_utc", "zone_of"]


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


def local_to_utc(local: pl.Expr, zone: Zone, *, ordered_day: bool, rows: int = 1) -> tuple[pl.Expr, pl.Expr]:
    """Expressions for (UTC epoch seconds, offset seconds) of naive local datetimes.

    ``ordered_day``: the rows are one day's times in recorded order, so a time earlier than
    its predecessor starts the second pass through a repeated (fall-back) hour.
    Non-existent local times (spring-forward gap) give nulls. ``rows``: the frame's height
    (Polars 2.1 panics on zone conversion with a per-row ``ambiguous`` over zero rows).
    """
    naive_epoch = local.dt.epoch("s")
    if rows == 0:
        return naive_epoch, naive_epoch
    if zone.name is None:
        offset = pl.lit(zone.offset_s, dtype=pl.Int64)
        return naive_epoch - offset, offset
    if ordered_day:
        second_pass = (naive_epoch.diff().fill_null(0) < 0).cum_sum() > 0
        ambiguous = pl.when(second_pass).then(pl.lit("latest")).otherwise(pl.lit("earliest"))
    else:
        ambiguous = pl.lit("earliest")
    aware = local.dt.replace_time_zone(zone.name, ambiguous=ambiguous, non_existent="null")
    utc = aware.dt.epoch("s")
    return utc, naive_epoch - utc
