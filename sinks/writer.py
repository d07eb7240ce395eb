"""Apply decoded ``daily`` and ``intraday`` records to the dataset (no Kafka here).

Order matters for readers only within one call: sample-level tables and the staging tables
first, then ``daily_summary``, then the day tables recomputed for every date either touched.
Every write is a whole-partition upsert, so applying the same records again changes nothing.

An ``intraday`` batch marked ``deleted`` lists samples the vendor withdrew (the daily agent
removed them from its days): their rows are removed, in arrival order with the additions, so
that a sample deleted and sent again is there at the end, and one sent and deleted is not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

import polars as pl

from models.daily import DailySummary
from models.samples import SampleBatch, deletion_runs
from sinks.compliance import observe_devices
from sinks.dataset import Dataset
from sinks.rows import (
    activity_summary,
    daily_summary_rows,
    heart_rate_summary,
    intraday_rows,
    sleep_daily_summary,
)
from sinks.tables import (
    ACTIVITY_SUMMARY,
    DAILY_SUMMARY,
    HEART_RATE_SUMMARY,
    SLEEP_DAILY_SUMMARY,
    STAGING,
    TABLES,
    VENDOR_DAILY,
    VENDOR_SLEEP,
    Table,
)

__all__ = ["DatasetWriter", "WriteReport"]


@dataclass(slots=True)
class WriteReport:
    """What one ``apply`` wrote: input rows per table, rows removed, and the partitions rewritten."""

    rows: dict[str, int] = field(default_factory=dict)
    removed: dict[str, int] = field(default_factory=dict)  # rows removed per table (vendor deletions)
    partitions: int = 0


class DatasetWriter:
    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def apply(self, summaries: Sequence[DailySummary], batches: Sequence[SampleBatch]) -> WriteReport:
        report = WriteReport()
        observe_devices(batches)  # compliance metrics: each participant's last sync and battery
        vendor_days: set[date] = set()
        sleep_days: set[date] = set()
        for deleting, positions in deletion_runs(batches):
            for table, rows in intraday_rows([batches[p] for p in positions]).items():
                if not rows.height:
                    continue
                if deleting:
                    written = self.dataset.remove(table, rows)
                    report.removed[table.name] = report.removed.get(table.name, 0) + sum(written.values())
                else:
                    written = self.dataset.upsert(table, rows)
                    report.rows[table.name] = report.rows.get(table.name, 0) + rows.height
                report.partitions += len(written)
                if table is VENDOR_DAILY:
                    vendor_days |= set(written)
                elif table is VENDOR_SLEEP:
                    sleep_days |= set(written)
        daily = daily_summary_rows(summaries)
        if daily.height:
            report.rows[DAILY_SUMMARY.name] = daily.height
            written = self.dataset.upsert(DAILY_SUMMARY, daily)
            report.partitions += len(written)
            vendor_days |= set(written)
        for day in sorted(vendor_days):
            figures = self.dataset.read(VENDOR_DAILY, day)
            self._replace(ACTIVITY_SUMMARY, day, activity_summary(figures, self.dataset.read(DAILY_SUMMARY, day)),
                          report)
            self._replace(HEART_RATE_SUMMARY, day, heart_rate_summary(figures), report)
        for day in sorted(sleep_days):
            self._replace(SLEEP_DAILY_SUMMARY, day, sleep_daily_summary(self.dataset.read(VENDOR_SLEEP, day)), report)
        return report

    def purge(self, research_id: str) -> dict[str, int]:
        """Remove the participant's rows from every table, staging ones too (files rewritten): rows
        removed by table."""
        removed = {}
        for table in (*TABLES.values(), *STAGING):
            counts = self.dataset.remove_person(table, research_id)
            removed[table.name] = sum(counts.values())
        return removed

    def _replace(self, table: Table, day: date, rows: pl.DataFrame, report: WriteReport) -> None:
        self.dataset.replace(table, day, rows)
        report.partitions += 1

