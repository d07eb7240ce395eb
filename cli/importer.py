"""`wearables import PATH`: publish a cohort's Fitbit JSON archive to ``raw.fitbit``.

Every page needs its participant's time zone (Fitbit times are local wall-clock times): the
one of their ``FITBIT/profile/<id>/profile.json``, else the cohort's default
(``--default-timezone`` / ``WEARABLES_DEFAULT_TIMEZONE``). Without either for someone, nothing
is published at all (``require_zones``): a page without a zone could only be dead-lettered.

The import ledger records a file only once Kafka acknowledged its page. A page the broker did not
acknowledge (within the producer's request timeout, ``DELIVERY_TIMEOUT_S``) leaves its file out of
the ledger, and the import ends with ``NotDelivered``: re-running it sends those files.

Files the scan skips (links, special files, names that are not UTF-8, impossible dates, files
above ``MAX_FILE_BYTES``, places outside the layout) never stop the import: they are counted by
reason, and the import succeeds with the good files. Only an archive with nothing to publish
(no data file, or none readable) ends with ``NothingToImport``. The console shows a few skipped
paths with participant folders masked; nothing here logs a path or an ID.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from rich.table import Table

from cli.console import console, progress
from cli.topics import create_all_topics
from connectors.archive import PROFILE_PATH, ArchiveFile, Profile, ScanResult, UnreadableFile, scan_archive
from connectors.import_ledger import ImportLedger, ledger_key
from models.errors import WearablesError
from models.ids import research_id
from models.providers import Provider
from models.topics import raw_topic_suffix
from runtime.kafka import make_producer, resolve_bootstrap
from runtime.logging import redact
from runtime.settings import Settings

__all__ = ["DELIVERY_TIMEOUT_S", "ImportReport", "MissingTimeZone", "NotDelivered", "NothingToImport", "require_zones",
           "run_import", "scan_or_fail"]

_FLUSH_EVERY = 500  # files; the ledger records a chunk only after the broker acknowledged it
#: The producer's request timeout: a page not acknowledged by then counts as not delivered.
DELIVERY_TIMEOUT_S = 30.0
_WAIT_MARGIN_S = 5.0  # on top of the request timeout before a chunk's outstanding sends are given up


@dataclass(slots=True)
class ImportReport:
    published: int = 0  # acknowledged by Kafka (and recorded in the ledger)
    already_imported: int = 0
    not_delivered: int = 0  # not acknowledged by Kafka: not in the ledger, the next import sends them
    skipped: Counter[str] = field(default_factory=Counter)
    participants: set[str] = field(default_factory=set)
    default_zone_files: int = 0  # published with the default zone (their participant has no profile)
    default_zone_participants: int = 0


class MissingTimeZone(WearablesError):
    """Participants without a profile and no default time zone: their pages would be dead letters."""


class NothingToImport(WearablesError):
    """The archive holds no data file that could be read: every file was skipped (counted by reason)."""

    def __init__(self, skipped: Counter[str]) -> None:
        total = sum(skipped.values())
        if total:
            super().__init__(f"nothing to import: every file was skipped ({_skip_summary(skipped)})")
        else:
            super().__init__("nothing to import: no file below the path: give the folder that holds FITBIT/")
        self.skipped = skipped


def _skip_summary(skipped: Counter[str]) -> str:
    """``2 skipped: 1 a symlink (never followed), 1 larger than 64 MiB`` (reasons name no file)."""
    total = sum(skipped.values())
    by_count = sorted(skipped.items(), key=lambda reason_count: (-reason_count[1], reason_count[0]))
    reasons = ", ".join(f"{count:,} {reason}" for reason, count in by_count)
    return f"{total:,} skipped: {reasons}"


class NotDelivered(WearablesError):
    """Files whose pages Kafka did not acknowledge; the ledger does not have them, so a re-run sends them."""

    def __init__(self, report: ImportReport, reason: str) -> None:
        files = "1 file was" if report.not_delivered == 1 else f"{report.not_delivered:,} files were"
        super().__init__(f"{files} not delivered to Kafka ({reason}); {report.published:,} delivered. "
                         "Re-running the import sends the undelivered files (the ledger does not have them)")
        self.report = report


def require_zones(scan: ScanResult, default_timezone: str | None) -> None:
    """Raise MissingTimeZone unless every participant has a profile or there is a default zone.

    The message counts the participants and never names one.
    """
    missing = len(scan.without_profile())
    if missing and default_timezone is None:
        raise MissingTimeZone(_missing_message(missing))


def _missing_message(missing: int) -> str:
    who = "1 participant has" if missing == 1 else f"{missing:,} participants have"
    return (f"{who} no {PROFILE_PATH} (their time zone), so nothing was published: give --default-timezone "
            "ZONE or set WEARABLES_DEFAULT_TIMEZONE to the cohort's IANA zone (e.g. America/Chicago)")


def scan_or_fail(path: Path) -> ScanResult:
    """The archive at ``path``, or a one-line error when there is none."""
    try:
        return scan_archive(path)
    except FileNotFoundError:
        raise WearablesError(f"{path} does not exist: give the folder that holds FITBIT/") from None


async def run_import(settings: Settings, path: Path, *, force: bool = False, quiet: bool = False,
                     archive: ScanResult | None = None) -> ImportReport:
    """Publish every data file of the archive at ``path`` (keyed by research_id); idempotent.

    ``archive``: the scan of ``path`` when the caller already has it. Refuses before connecting to
    Kafka when a participant has no zone (MissingTimeZone) or there is no data file (NothingToImport);
    skipped files are counted in ``ImportReport.skipped`` by reason.
    """
    scan_result = archive if archive is not None else scan_or_fail(path)
    if not scan_result.files:
        raise NothingToImport(Counter(s.reason for s in scan_result.skipped))
    require_zones(scan_result, settings.default_timezone)
    secret = settings.require_secret_key()
    bootstrap = resolve_bootstrap(settings)
    await create_all_topics(settings, bootstrap)
    report = ImportReport(skipped=Counter(s.reason for s in scan_result.skipped))
    ledger = ImportLedger(settings.data_dir / "imports.sqlite", key=ledger_key(secret))
    producer = make_producer(settings, bootstrap, request_timeout_ms=int(DELIVERY_TIMEOUT_S * 1000))
    await producer.start()
    try:
        failure = await _publish(scan_result, report, ledger, producer, settings, secret, force=force, quiet=quiet)
    finally:
        await producer.stop()
        ledger.close()
    if not quiet:
        _print(report, scan_result, settings.default_timezone)
    if report.not_delivered:
        raise NotDelivered(report, failure or "no acknowledgement")
    if not report.published and not report.already_imported:  # every data file was unreadable
        raise NothingToImport(report.skipped)
    return report


@dataclass(slots=True)
class _Sent:
    """A file whose page was handed to the producer, and the future of its acknowledgement."""

    entry: tuple[str, str, str]  # (relative, digest, zone) for the ledger
    key: str
    by_default: bool
    future: asyncio.Future[Any]


def _error_name(error: BaseException) -> str:
    return type(error).__name__  # never the message: it may carry a topic or a broker address, not a file


async def _publish(scan: ScanResult, report: ImportReport, ledger: ImportLedger, producer: AIOKafkaProducer,
                   settings: Settings, secret: bytes, *, force: bool, quiet: bool) -> str | None:
    """Send the files not yet imported; record in the ledger those Kafka acknowledged.

    Returns why deliveries failed (``report.not_delivered`` counts them), or None. After a send
    that fails at once (no metadata, producer closed) the rest are not tried: each would wait as long.
    """
    topic = settings.topic(raw_topic_suffix(Provider.FITBIT))
    pending: list[_Sent] = []
    defaulted: set[str] = set()
    failure: str | None = None
    with progress("importing", len(scan.files), quiet=quiet) as steps:
        for file in scan.files:
            try:
                body = file.read_bytes()  # O_NOFOLLOW, the file the scan saw, within the size cap
            except UnreadableFile as unreadable:
                report.skipped[unreadable.reason] += 1
                steps.advance()
                continue
            digest = hashlib.sha256(body).hexdigest()
            profile, by_default = _zone(scan, file, settings.default_timezone)
            # a file published by an earlier version without any zone is published again with the default
            if not force and ledger.seen(file.relative, digest, with_zone=by_default):
                report.already_imported += 1
            elif failure is not None:
                report.not_delivered += 1
            else:
                page = file.page(body, profile, fetched_at=time.time())
                key = research_id(secret, file.participant_id)
                try:
                    future = await producer.send(topic, page.to_bytes(), key=key.encode())
                except KafkaError as error:
                    report.not_delivered += 1
                    failure = _error_name(error)
                else:
                    pending.append(_Sent((file.relative, digest, profile.label), key, by_default, future))
            if len(pending) >= _FLUSH_EVERY:
                failure = await _settle(pending, report, ledger, defaulted) or failure
                pending.clear()
            steps.advance()
        failure = await _settle(pending, report, ledger, defaulted) or failure
    report.default_zone_participants = len(defaulted)
    return failure


async def _settle(pending: list[_Sent], report: ImportReport, ledger: ImportLedger, defaulted: set[str]) -> str | None:
    """Await the acknowledgements of ``pending`` (bounded), record the acknowledged files; why others failed."""
    if not pending:
        return None
    futures = [sent.future for sent in pending]
    try:
        await asyncio.wait_for(asyncio.gather(*futures, return_exceptions=True), DELIVERY_TIMEOUT_S + _WAIT_MARGIN_S)
    except TimeoutError:
        pass  # the futures still outstanding were cancelled: they count as not delivered below
    delivered: list[tuple[str, str, str]] = []
    failure: str | None = None
    for sent in pending:
        future = sent.future
        if future.done() and not future.cancelled() and future.exception() is None:
            delivered.append(sent.entry)
            report.published += 1
            report.participants.add(sent.key)
            if sent.by_default:
                report.default_zone_files += 1
                defaulted.add(sent.key)
        else:
            report.not_delivered += 1
            if failure is None:
                error = future.exception() if future.done() and not future.cancelled() else None
                failure = _error_name(error) if error is not None else "no acknowledgement in time"
    ledger.record(delivered)
    return failure


def _zone(scan: ScanResult, file: ArchiveFile, default_timezone: str | None) -> tuple[Profile, bool]:
    """The file's participant's zone and whether it is the default one (``require_zones`` ran before)."""
    profile = scan.profile_of(file.participant_id, default_timezone)
    if profile is None:  # require_zones refused such an archive already; kept for callers that did not ask
        raise MissingTimeZone(_missing_message(len(scan.without_profile())))
    return profile, file.participant_id not in scan.profiles


def _print(report: ImportReport, scan: ScanResult, default_timezone: str | None) -> None:
    table = Table("", "files", title="import")
    table.add_row("published to raw.fitbit", str(report.published))
    table.add_row("already imported (unchanged)", str(report.already_imported))
    if report.not_delivered:
        table.add_row("not delivered (sent again next time)", str(report.not_delivered))
    for reason, count in sorted(report.skipped.items()):
        table.add_row(f"skipped: {reason}", str(count))
    table.add_row("participants published", str(len(report.participants)))
    console.print(table)
    for skipped in scan.skipped[:5]:  # a few examples, participant folders masked
        console.print(f"  skipped {_shown(skipped.path)}: {skipped.reason}", markup=False, soft_wrap=True)
    summary = f"imported {report.published:,} file(s)"
    if report.already_imported:
        summary += f" ({report.already_imported:,} already imported)"
    if report.not_delivered:
        summary += f", {report.not_delivered:,} not delivered"
    console.print(summary + (f", {_skip_summary(report.skipped)}" if report.skipped else ""), markup=False,
                  soft_wrap=True)  # one line, whatever the terminal's width
    if report.default_zone_files:
        console.print(f"{report.default_zone_files:,} file(s) of {report.default_zone_participants:,} participant(s) "
                      f"without {PROFILE_PATH} published with the default time zone {default_timezone}",
                      markup=False)


def _shown(path: Path) -> str:
    """A path for the console: undecodable bytes and control characters escaped, participant folders masked."""
    text = str(path).encode("utf-8", "backslashreplace").decode("utf-8")
    return redact("".join(c if c.isprintable() else repr(c)[1:-1] for c in text))
