"""`wearables import PATH`: publish a cohort's Fitbit JSON archive to ``raw.fitbit``."""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from aiokafka import AIOKafkaProducer
from rich.table import Table

from cli.console import console, progress
from cli.topics import create_all_topics
from connectors.archive import ScanResult, scan_archive
from connectors.import_ledger import ImportLedger
from models.errors import WearablesError
from models.ids import research_id
from models.providers import Provider
from models.topics import raw_topic_suffix
from runtime.kafka import make_producer, resolve_bootstrap
from runtime.logging import redact
from runtime.settings import Settings

__all__ = ["ImportReport", "run_import"]

_FLUSH_EVERY = 500  # files; the ledger records a chunk only after the broker acknowledged it


@dataclass(slots=True)
class ImportReport:
    published: int = 0
    already_imported: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    participants: set[str] = field(default_factory=set)
    without_zone: int = 0


async def run_import(settings: Settings, path: Path, *, force: bool = False, quiet: bool = False) -> ImportReport:
    """Publish every data file of the archive at ``path`` (keyed by research_id); idempotent."""
    try:
        scan = scan_archive(path)
    except FileNotFoundError:
        raise WearablesError(f"{path} does not exist: give the folder that holds FITBIT/") from None
    secret = settings.require_secret_key()
    bootstrap = resolve_bootstrap(settings)
    await create_all_topics(settings, bootstrap)
    report = ImportReport(skipped=Counter(s.reason for s in scan.skipped))
    ledger = ImportLedger(settings.data_dir / "imports.sqlite")
    producer = make_producer(settings, bootstrap)
    await producer.start()
    try:
        await _publish(scan, report, ledger, producer, settings, secret, force=force, quiet=quiet)
    finally:
        await producer.stop()
        ledger.close()
    if not quiet:
        _print(report, scan)
    return report


async def _publish(scan: ScanResult, report: ImportReport, ledger: ImportLedger, producer: AIOKafkaProducer,
                   settings: Settings, secret: bytes, *, force: bool, quiet: bool) -> None:
    topic = settings.topic(raw_topic_suffix(Provider.FITBIT))
    pending: list[tuple[str, str]] = []
    with progress("importing", len(scan.files), quiet=quiet) as steps:
        for file in scan.files:
            body = file.path.read_bytes()
            digest = hashlib.sha256(body).hexdigest()
            if not force and ledger.seen(file.relative, digest):
                report.already_imported += 1
            else:
                profile = scan.profiles.get(file.participant_id)
                report.without_zone += profile is None
                page = file.page(body, profile, fetched_at=time.time())
                key = research_id(secret, file.participant_id).encode()
                await producer.send(topic, page.to_bytes(), key=key)
                pending.append((file.relative, digest))
                report.published += 1
                report.participants.add(key.decode())
            if len(pending) >= _FLUSH_EVERY:
                await producer.flush()
                ledger.record(pending)
                pending.clear()
            steps.advance()
        await producer.flush()
        ledger.record(pending)


def _print(report: ImportReport, scan: ScanResult) -> None:
    table = Table("", "files", title="import")
    table.add_row("published to raw.fitbit", str(report.published))
    table.add_row("already imported (unchanged)", str(report.already_imported))
    for reason, count in sorted(report.skipped.items()):
        table.add_row(f"skipped: {reason}", str(count))
    table.add_row("participants published", str(len(report.participants)))
    console.print(table)
    for skipped in scan.skipped[:5]:  # a few examples, participant folders masked
        console.print(f"  skipped {redact(str(skipped.path))}: {skipped.reason}", markup=False)
    if report.without_zone:
        console.print(f"{report.without_zone} file(s) of participants without FITBIT/profile/<id>/profile.json: "
                      "their intraday and sleep pages will go to the dead-letter topic (no UTC offset)")
