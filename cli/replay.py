"""`wearables replay PATH --out DIR`: a cohort archive → the researcher dataset, in one command.

Uses the configured Kafka, else an embedded broker of its own (with fresh worker state in a
temporary directory, since that broker forgets everything when it stops); imports the
archive, runs the worker until every page is processed, then the sink until nothing new has
arrived for a moment, and prints what the dataset holds for the archive's participants and
the dead letters of the run by reason (read back from the ``dlq`` topic).
Running it again on the same archive and ``--out`` rewrites identical rows: no file changes.

It refuses before starting anything when a participant has no time zone (``require_zones``),
and fails after its table when pages were published but the dataset holds no day for the
archive's participants (every page a dead letter): a replay that wrote nothing is no success.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import polars as pl
from aiokafka import TopicPartition
from rich.table import Table

from cli.console import console, follow_pages
from cli.importer import NothingToImport, require_zones, run_import, scan_or_fail
from cli.kafka_session import kafka_session
from cli.topics import create_all_topics
from models.dead_letter import DeadLetter
from models.errors import DecodeError, WearablesError
from models.ids import research_id
from runtime.kafka import make_consumer
from runtime.settings import Settings
from sinks.dataset import Dataset
from sinks.runner import SinkRunner
from sinks.tables import DAILY_SUMMARY
from streams.runner import WorkerService

__all__ = ["DeadLetters", "NothingSummarized", "ReplayReport", "run_replay"]

_DLQ_READ_S = 30.0  # at most, to read back the run's dead letters (they are on the broker already)


class NothingSummarized(WearablesError):
    """Pages were published, yet the dataset holds no day of the archive's participants."""


@dataclass(frozen=True, slots=True)
class DeadLetters:
    """The run's dead letters of one reason: how many letters, and what they stand for (a letter holds
    one record or page, or a page's rejected samples)."""

    reason: str
    letters: int
    count: int  # the letters' DeadLetter.count summed: samples, or 1 per whole record


@dataclass(frozen=True, slots=True)
class ReplayReport:
    participants: int
    days: int
    samples: int
    rejects: int
    valid_days: int
    pages: int
    dead_letters: tuple[DeadLetters, ...] = ()  # by reason, most letters first


async def run_replay(settings: Settings, archive: Path, out: Path, *, timeout: float,
                     quiet_s: float = 3.0) -> ReplayReport:
    started = time.monotonic()
    scan = scan_or_fail(archive)
    if not scan.files:  # before the worker starts: an archive without one usable file is nothing to replay
        raise NothingToImport(Counter(s.reason for s in scan.skipped))
    require_zones(scan, settings.default_timezone)  # before any broker, topic or page
    secret = settings.require_secret_key()
    with tempfile.TemporaryDirectory(prefix="wearables-replay-") as scratch:
        async with kafka_session(settings, log_name="replay-broker.log") as kafka:
            bootstrap = kafka.bootstrap
            run = settings.with_overrides(kafka_bootstrap_servers=bootstrap, dataset=str(out))
            if settings.uses_embedded_broker:  # a fresh broker: fresh worker state and import ledger too
                run = run.with_overrides(data_dir=Path(scratch))
            await create_all_topics(run, bootstrap)
            dlq = await _dlq_ends(run)  # letters from here on are this run's
            console.print("starting the worker (joining its consumer group)")
            async with WorkerService(run, bootstrap=bootstrap).running() as worker:
                imported = await run_import(run, archive, archive=scan)
                await follow_pages(worker.pipeline.progress, imported.published, timeout)
                console.print("writing the dataset (until the daily and intraday topics are drained)")
                progress = await SinkRunner(run, bootstrap=bootstrap, location=str(out), idle_exit=quiet_s).drain()
            console.print(f"sink: {progress.records:,} records merged into {out} "
                          f"({progress.dead_letters} dead letters)")
            letters = await _dead_letters_since(run, dlq)
    # everyone in the archive, published this time or at an earlier replay
    people = {research_id(secret, f.participant_id) for f in scan.files}
    report = _report(Dataset(str(out)), people, imported.published, letters)
    _print(report, time.monotonic() - started)
    if report.pages and not report.days:
        total = sum(d.letters for d in report.dead_letters)
        published = "1 page was" if report.pages == 1 else f"{report.pages:,} pages were"
        raise NothingSummarized(
            f"{published} published but no day was summarized ({total:,} dead letter(s), by reason above): "
            "fix what the reasons point at in the archive or the settings, then replay again")
    return report


async def _dlq_ends(settings: Settings) -> dict[TopicPartition, int]:
    """The ``dlq`` topic's end offsets now (every partition)."""
    topic = settings.topic("dlq")
    consumer = make_consumer(settings, topic)  # subscribed (never polled): start() waits for the topic's metadata
    await consumer.start()
    try:
        partitions = sorted(consumer.partitions_for_topic(topic) or ())
        ends: dict[TopicPartition, int] = await consumer.end_offsets([TopicPartition(topic, p) for p in partitions])
        return ends
    finally:
        await consumer.stop()


async def _dead_letters_since(settings: Settings, since: dict[TopicPartition, int]) -> tuple[DeadLetters, ...]:
    """Count by reason the ``dlq`` records after the offsets ``since``: what this run dead-lettered (on a
    configured Kafka, also what other workers of the same topics dead-lettered meanwhile)."""
    consumer = make_consumer(settings)
    await consumer.start()
    letters: Counter[str] = Counter()
    counts: Counter[str] = Counter()
    try:
        ends = await consumer.end_offsets(list(since))
        todo = {tp for tp in since if ends[tp] > since[tp]}
        if not todo:
            return ()
        consumer.assign(sorted(todo, key=lambda tp: tp.partition))
        for tp in todo:
            consumer.seek(tp, since[tp])
        deadline = asyncio.get_running_loop().time() + _DLQ_READ_S
        while todo and asyncio.get_running_loop().time() < deadline:
            for tp, records in (await consumer.getmany(*todo, timeout_ms=500)).items():
                for record in records:
                    reason, count = _reason_of(record.value)
                    letters[reason] += 1
                    counts[reason] += count
                if await consumer.position(tp) >= ends[tp]:
                    todo.discard(tp)
        if todo:
            console.print(f"not every dead letter could be read back within {_DLQ_READ_S:g}s: the counts below are "
                          "short of the topic's", markup=False)
    finally:
        await consumer.stop()
    return tuple(DeadLetters(reason, n, counts[reason]) for reason, n in letters.most_common())


def _reason_of(value: bytes | None) -> tuple[str, int]:
    try:
        letter = DeadLetter.from_bytes(value or b"")
    except DecodeError:
        return "unreadable dead letter", 1
    return letter.reason.value, letter.count


def _report(dataset: Dataset, people: set[str], pages: int, letters: tuple[DeadLetters, ...]) -> ReplayReport:
    days = dataset.read_all(DAILY_SUMMARY).filter(pl.col("person_id").is_in(sorted(people)))
    return ReplayReport(participants=days["person_id"].n_unique(), days=days.height,
                        samples=int(days["samples"].sum() or 0), rejects=int(days["rejects"].sum() or 0),
                        valid_days=int(days["valid_day"].sum() or 0), pages=pages, dead_letters=letters)


def _print(report: ReplayReport, elapsed: float) -> None:
    table = Table("participants", "days", "samples", "rejects", "valid days", title="replayed into the dataset")
    table.add_row(f"{report.participants:,}", f"{report.days:,}", f"{report.samples:,}", f"{report.rejects:,}",
                  f"{report.valid_days:,}")
    console.print(table)
    if report.dead_letters:
        letters = Table("reason", "dead letters", "records or samples", title="dead letters of this replay, by reason")
        for row in report.dead_letters:
            letters.add_row(row.reason, f"{row.letters:,}", f"{row.count:,}")
        console.print(letters)
    else:
        console.print("no dead letters in this replay")
    console.print(f"replay finished in {elapsed:.1f}s ({report.pages:,} pages published)")
