"""`wearables replay PATH --out DIR`: a cohort archive → the researcher dataset, in one command.

Uses the configured Kafka, else an embedded broker of its own (with fresh worker state in a
temporary directory, since that broker forgets everything when it stops); imports the
archive, runs the worker until every page is processed, then the sink until nothing new has
arrived for a moment, and prints what the dataset holds for the archive's participants.
Running it again on the same archive and ``--out`` rewrites identical rows: no file changes.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import polars as pl
from rich.table import Table

from cli.console import console, follow_pages
from cli.importer import run_import
from cli.kafka_session import kafka_session
from cli.topics import create_all_topics
from connectors.archive import scan_archive
from models.ids import research_id
from runtime.settings import Settings
from sinks.dataset import Dataset
from sinks.runner import SinkRunner
from sinks.tables import DAILY_SUMMARY
from streams.runner import WorkerService

__all__ = ["ReplayReport", "run_replay"]


@dataclass(frozen=True, slots=True)
class ReplayReport:
    participants: int
    days: int
    samples: int
    rejects: int
    valid_days: int
    pages: int


async def run_replay(settings: Settings, archive: Path, out: Path, *, timeout: float,
                     quiet_s: float = 3.0) -> ReplayReport:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="wearables-replay-") as scratch:
        async with kafka_session(settings, log_name="replay-broker.log") as kafka:
            bootstrap = kafka.bootstrap
            run = settings.with_overrides(kafka_bootstrap_servers=bootstrap, dataset=str(out))
            if settings.uses_embedded_broker:  # a fresh broker: fresh worker state and import ledger too
                run = run.with_overrides(data_dir=Path(scratch))
            await create_all_topics(run, bootstrap)
            console.print("starting the worker (joining its consumer group)")
            async with WorkerService(run, bootstrap=bootstrap).running() as worker:
                imported = await run_import(run, archive)
                await follow_pages(worker.pipeline.progress, imported.published, timeout)
                console.print("writing the dataset (until the daily and intraday topics are drained)")
                progress = await SinkRunner(run, bootstrap=bootstrap, location=str(out), idle_exit=quiet_s).drain()
            console.print(f"sink: {progress.records:,} records merged into {out} "
                          f"({progress.dead_letters} dead letters)")
    # everyone in the archive, published this time or at an earlier replay
    secret = settings.require_secret_key()
    people = {research_id(secret, f.participant_id) for f in scan_archive(archive).files}
    report = _report(Dataset(str(out)), people, imported.published)
    _print(report, time.monotonic() - started)
    return report


def _report(dataset: Dataset, people: set[str], pages: int) -> ReplayReport:
    days = dataset.read_all(DAILY_SUMMARY).filter(pl.col("person_id").is_in(sorted(people)))
    return ReplayReport(participants=days["person_id"].n_unique(), days=days.height,
                        samples=int(days["samples"].sum() or 0), rejects=int(days["rejects"].sum() or 0),
                        valid_days=int(days["valid_day"].sum() or 0), pages=pages)


def _print(report: ReplayReport, elapsed: float) -> None:
    table = Table("participants", "days", "samples", "rejects", "valid days", title="replayed into the dataset")
    table.add_row(f"{report.participants:,}", f"{report.days:,}", f"{report.samples:,}", f"{report.rejects:,}",
                  f"{report.valid_days:,}")
    console.print(table)
    console.print(f"replay finished in {elapsed:.1f}s ({report.pages:,} pages published)")
