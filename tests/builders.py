"""Builders for vendor pages and records used across the tests (documented shapes)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

import orjson

from models.providers import Provider
from models.raw import RawPage

SECRET = b"test-secret-key-with-enough-length-123"


def clock(minute: int, second: int = 0) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}:{second:02d}"


def fitbit_intraday_body(kind: str, day: date, dataset: Sequence[dict[str, Any]], *,
                         daily: Any = None, interval: int = 1, dataset_type: str = "minute") -> bytes:
    """``kind`` is ``steps`` or ``heart``; ``daily`` the ``activities-<kind>[0].value``."""
    entry: dict[str, Any] = {"dateTime": day.isoformat()}
    if daily is not None:
        entry["value"] = daily
    return orjson.dumps({
        f"activities-{kind}": [entry],
        f"activities-{kind}-intraday": {"dataset": list(dataset), "datasetInterval": interval,
                                        "datasetType": dataset_type},
    })


def fitbit_page(data_type: str, body: bytes, *, day: date | None = None, timezone: str | None = "America/New_York",
                utc_offset_ms: int | None = None, detail: str | None = "1min") -> RawPage:
    return RawPage(provider=Provider.FITBIT, data_type=data_type, date=day.isoformat() if day else None, body=body,
                   detail=detail, timezone=timezone, utc_offset_ms=utc_offset_ms, fetched_at=1.0, request_id="t")


def google_page(data_type: str, points: list[Any], *, token: str | None = None) -> RawPage:
    body: dict[str, Any] = {"dataPoints": points}
    if token:
        body["nextPageToken"] = token
    return RawPage(provider=Provider.GOOGLE_HEALTH, data_type=data_type, date=None, body=orjson.dumps(body),
                   fetched_at=1.0, request_id="t")


def fitbit_minute_pages(day: date, n: int) -> list[tuple[str, bytes]]:
    """Participant ``n``'s Fitbit steps and heart-rate intraday bodies of ``day``: every minute has a
    valid value (steps 07:00-21:00, a steps daily total), so each page makes 1,440 samples."""
    steps = [((minute * 7 + n) % 40) if 420 <= minute < 1260 else 0 for minute in range(1440)]
    heart = [60 + (minute + n) % 50 for minute in range(1440)]
    return [
        ("activities-steps-intraday", fitbit_intraday_body("steps", day, minute_dataset(steps), daily=str(sum(steps)))),
        ("activities-heart-intraday", fitbit_intraday_body("heart", day, minute_dataset(heart))),
    ]


async def send_minute_pages(producer: Any, topic: str, rids: Sequence[str], first: date, count: int) -> None:
    """Send ``fitbit_minute_pages`` of ``count`` days from ``first`` for each research ID (the
    n-th ID gets participant ``n``'s values) onto ``topic``, keyed by research ID."""
    for n, rid in enumerate(rids):
        for day in days(first, count):
            for data_type, body in fitbit_minute_pages(day, n):
                await producer.send(topic, fitbit_page(data_type, body, day=day).to_bytes(), key=rid.encode())


def minute_dataset(values: Sequence[Any], *, start_minute: int = 0) -> list[dict[str, Any]]:
    return [{"time": clock(start_minute + i), "value": v} for i, v in enumerate(values)]


def days(first: date, count: int) -> list[date]:
    return [first + timedelta(days=i) for i in range(count)]


def fitabase_minute_steps(folder: Any) -> Any:
    """Fitabase ``minuteStepsWide_merged.csv`` in ``folder`` as long rows: ``id``, ``local`` (datetime), ``steps``.

    Furberg et al. (2016), Crowd-sourced Fitbit datasets, Zenodo 10.5281/zenodo.53894 (CC BY 4.0);
    the copy, its source and checksums: tests/data/fitabase/README.md.
    """
    import polars as pl

    wide = pl.read_csv(folder / "minuteStepsWide_merged.csv")
    minutes = [c for c in wide.columns if c.startswith("Steps")]
    return (
        wide.with_columns(hour=pl.col("ActivityHour").str.strptime(pl.Datetime("us"), "%m/%d/%Y %I:%M:%S %p"))
        .unpivot(index=["Id", "hour"], on=minutes, variable_name="minute", value_name="steps")
        .select(id=pl.col("Id").cast(pl.String),
                local=pl.col("hour") + pl.duration(minutes=pl.col("minute").str.slice(5).cast(pl.Int64)),
                steps=pl.col("steps"))
        .sort("id", "local")
    )


def fitabase_step_pages(long: Any) -> list[tuple[str, RawPage]]:
    """One legacy ``activities-steps-intraday`` page per participant-day of the long rows."""
    import polars as pl

    pages = []
    by_day = long.with_columns(day=pl.col("local").dt.date(), time=pl.col("local").dt.strftime("%H:%M:%S"))
    for (person, day), rows in by_day.group_by(["id", "day"], maintain_order=True):
        dataset = rows.select("time", value="steps").to_dicts()
        body = fitbit_intraday_body("steps", day, dataset, daily=str(rows["steps"].sum()))
        pages.append((str(person), fitbit_page("activities-steps-intraday", body, day=day, timezone=None,
                                               utc_offset_ms=0)))
    return pages


class RecordingProducer:
    """Stands in for an AIOKafkaProducer where a test checks what would be published:
    ``sent`` holds (topic, value, key) in order (a None value is a tombstone)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, bytes | None]] = []

    async def send_and_wait(self, topic: str, value: bytes | None, key: bytes | None = None) -> None:
        self.sent.append((topic, value, key))

    async def send(self, topic: str, value: bytes | None, key: bytes | None = None) -> None:
        self.sent.append((topic, value, key))
