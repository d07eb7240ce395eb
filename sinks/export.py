"""``wearables export``: a researcher's copy of the dataset, in the registered or controlled tier.

Registered tier: every date and datetime of a participant moves back by that participant's own
shift (1-364 days, keyed HMAC of the research_id, ``models.ids.date_shift_days``): the same
shift in every table and on every day, so intervals and weekdays-apart stay true while the
calendar dates do not. Controlled tier: true dates. ``--from``/``--to`` select by true date.

Layout. Registered: one file per table, ``out/<table>/<table>.<fmt>``, its rows sorted by
(person_id, shifted date, the rest of the key). Nothing in it follows true dates: no file per
true date, no true-date-ordered numbering, no row order by true date, so rows that share a file
or a position share no true date across participants, and file numbers plus a public date give
no participant's shift. The data itself still can: a participant's earliest shifted date is
their first true date minus their shift, so whoever knows when a participant started (or the
``--from`` of an export) learns that shift; the layout adds nothing to it. The registered tier
holds a whole table in memory to sort it. Controlled: ``out/<table>/part-NNNNN.<fmt>``, one file
per true date in date order (it holds true dates anyway).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from pathlib import Path

import polars as pl

from models.ids import date_shift_days
from sinks.dataset import Dataset
from sinks.tables import TABLES, Table

__all__ = ["ExportReport", "Format", "Tier", "export", "registered_rows", "shift_dates"]


class Tier(StrEnum):
    REGISTERED = "registered"
    CONTROLLED = "controlled"


class Format(StrEnum):
    PARQUET = "parquet"
    CSV = "csv"


@dataclass(slots=True)
class ExportReport:
    rows: dict[str, int] = field(default_factory=dict)
    files: int = 0


def shift_dates(frame: pl.DataFrame, secret: bytes) -> pl.DataFrame:
    """Every Date and Datetime column moved back by each row's participant shift."""
    if frame.is_empty():
        return frame
    people = frame["person_id"].unique()
    shifts = pl.DataFrame({"person_id": people, "__shift": [date_shift_days(secret, p) for p in people]},
                          schema={"person_id": pl.String, "__shift": pl.Int64})
    moved = frame.join(shifts, on="person_id", how="left", maintain_order="left")
    dated = [name for name, dtype in frame.schema.items() if isinstance(dtype, pl.Date | pl.Datetime)]
    return moved.with_columns(
        [(pl.col(name) - pl.duration(days=pl.col("__shift"))).alias(name) for name in dated]).drop("__shift")


def export(dataset: Dataset, out: Path, *, tier: Tier, first: date | None, last: date | None, fmt: Format,
           secret: bytes, tables: list[Table] | None = None,
           on_partition: Callable[[str, int, int], None] | None = None) -> ExportReport:
    """Write every table: registered ``out/<table>/<table>.<fmt>`` (one file, rows in (person_id,
    shifted date) order), controlled ``out/<table>/part-NNNNN.<fmt>`` (one file per true date).

    ``on_partition(table, done, total)`` reports progress over the partitions read.
    """
    report = ExportReport()
    for table in tables or list(TABLES.values()):
        days = [d for d in dataset.dates(table.name) if (first is None or d >= first) and (last is None or d <= last)]
        target = out / table.name
        target.mkdir(parents=True, exist_ok=True)
        for stale in [*target.glob("part-*"), *target.glob(f"{table.name}.*")]:  # a re-export replaces the last
            stale.unlink()
        report.rows[table.name] = 0
        frames: list[pl.DataFrame] = []
        for n, day in enumerate(days, start=1):
            rows = dataset.read(table, day)
            if tier is Tier.REGISTERED:
                frames.append(rows)
            else:
                _write(rows, target / f"part-{n:05d}.{fmt.value}", fmt)
                report.files += 1
            report.rows[table.name] += rows.height
            if on_partition:
                on_partition(table.name, n, len(days))
        if not days and on_partition:
            on_partition(table.name, 0, 0)
        if tier is Tier.REGISTERED:
            _write(registered_rows(table, frames, secret), target / f"{table.name}.{fmt.value}", fmt)
            report.files += 1
    return report


def registered_rows(table: Table, frames: list[pl.DataFrame], secret: bytes) -> pl.DataFrame:
    """A table's rows, dates shifted, in (person_id, shifted date, rest of the key) order: an order
    that is the same whatever the true dates are, so neither a row's position nor its neighbours
    tell its true date."""
    rows = shift_dates(pl.concat(frames) if frames else table.empty(), secret)
    order = ["person_id", table.partition_by, *[k for k in table.key if k not in ("person_id", table.partition_by)]]
    return rows.sort(order, nulls_last=True, maintain_order=True)


def _write(rows: pl.DataFrame, path: Path, fmt: Format) -> None:
    temporary = path.with_suffix(path.suffix + ".tmp")
    if fmt is Format.PARQUET:
        rows.write_parquet(temporary, compression="zstd")
    else:
        rows.write_csv(temporary)
    temporary.replace(path)
