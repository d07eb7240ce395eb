"""`wearables import` against the embedded broker: every file published once, keyed by research_id,
each page with its participant's zone (their profile's, else the default) and its file's date;
an archive with participants of no zone at all is refused before anything is published; a file
whose page Kafka did not acknowledge stays out of the ledger, fails the import and is sent next time;
unsafe or unusable files (links, files above the size cap, names not UTF-8, impossible dates) are
skipped with their reasons while the rest is imported, and the ledger holds no participant ID."""

from __future__ import annotations

import asyncio
import hashlib
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

import cli.importer
from cli.importer import MissingTimeZone, NotDelivered, NothingToImport, run_import
from cli.topics import create_all_topics
from connectors.archive import MAX_FILE_BYTES, scan_archive
from models.ids import research_id
from models.raw import RawPage
from runtime.broker import BrokerService, EmbeddedBroker
from runtime.kafka import make_consumer, make_producer
from runtime.settings import Settings
from streams.normalize import normalize
from tests.connectors.test_archive import COHORT, make_archive

pytestmark = pytest.mark.integration


def _ledger_rows(settings: Settings) -> int:
    ledger = sqlite3.connect(settings.data_dir / "imports.sqlite")
    try:
        count: int = ledger.execute("SELECT count(*) FROM published").fetchone()[0]
        return count
    finally:
        ledger.close()


async def _raw_records(settings: Settings, expected: int) -> list[tuple[bytes, bytes]]:
    group = f"{settings.kafka.topic_prefix}import-check"  # one per test: a group shared across tests rebalances slowly
    consumer = make_consumer(settings, settings.topic("raw.fitbit"), group_id=group)
    await consumer.start()
    records: list[tuple[bytes, bytes]] = []
    try:
        for _ in range(30):
            batch = await consumer.getmany(timeout_ms=300)
            records += [(m.key, m.value) for messages in batch.values() for m in messages]
            if len(records) >= expected and not batch:
                break
    finally:
        await consumer.stop()
    return records


async def test_participants_without_a_zone_are_refused_before_anything_is_published(
        settings_factory: Callable[..., Settings], tmp_path: Path) -> None:
    settings = settings_factory()
    await create_all_topics(settings)
    archive = make_archive(tmp_path / "archive")  # the second participant has no profile.json
    with pytest.raises(MissingTimeZone) as refused:
        await run_import(settings, archive, quiet=True)
    message = str(refused.value)
    assert message.startswith("1 participant has no FITBIT/profile/<id>/profile.json")
    assert "--default-timezone" in message and "WEARABLES_DEFAULT_TIMEZONE" in message
    assert "\n" not in message and not any(p in message for p in COHORT.participant_ids)
    assert await _raw_records(settings, 0) == []
    assert not (settings.data_dir / "imports.sqlite").exists()  # no ledger row either


async def test_import_publishes_every_file_once(settings_factory: Callable[..., Settings], tmp_path: Path) -> None:
    settings = settings_factory(default_timezone="Europe/Berlin")
    archive = make_archive(tmp_path / "archive")
    with_profile, without = COHORT.participant_ids
    # a page as archives hold it: its dateTime relative to the day it was fetched
    today = next(f for f in scan_archive(archive).files if f.participant_id == without and f.date == "2021-11-10")
    today.path.write_bytes(today.path.read_bytes().replace(b'"dateTime":"2021-11-10"', b'"dateTime":"today"', 1))

    first = await run_import(settings, archive, quiet=True)
    assert first.published == 8 and first.already_imported == 0 and first.not_delivered == 0
    assert _ledger_rows(settings) == 8  # every file, each after the broker acknowledged it
    assert sum(first.skipped.values()) == 5
    assert (first.default_zone_files, first.default_zone_participants) == (4, 1)

    again = await run_import(settings, archive, quiet=True)
    assert (again.published, again.already_imported) == (0, 8)

    records = await _raw_records(settings, 8)
    assert len(records) == 8
    secret = settings.require_secret_key()
    keys = {research_id(secret, p).encode(): p for p in COHORT.participant_ids}
    assert {key for key, _ in records} == set(keys)
    zones = {with_profile: "America/Chicago", without: "Europe/Berlin"}
    for key, value in records:
        page = RawPage.from_bytes(value)
        assert page.origin == "archive" and page.date in ("2021-11-09", "2021-11-10")
        assert not any(p.encode() in value for p in COHORT.participant_ids)  # no participant ID on the wire
        assert page.timezone == zones[keys[key]]
        if page.body == today.path.read_bytes():
            assert (page.date, page.data_type) == ("2021-11-10", today.data_type)  # the file's date
        else:
            assert normalize(page, key.decode(), secret=secret).samples > 1000

    forced = await run_import(settings, archive, force=True, quiet=True)
    assert forced.published == 8


async def test_files_an_earlier_version_published_without_a_zone_are_published_again_with_the_default(
        settings_factory: Callable[..., Settings], tmp_path: Path) -> None:
    settings = settings_factory(default_timezone="Europe/Berlin")
    archive = make_archive(tmp_path / "archive")
    scan = scan_archive(archive)
    settings.data_dir.mkdir(parents=True)
    old = sqlite3.connect(settings.data_dir / "imports.sqlite")
    with old:  # the ledger of an import before zones were recorded: every file published
        old.execute("CREATE TABLE imported (relative TEXT, sha256 TEXT, at REAL, PRIMARY KEY (relative, sha256))")
        old.executemany("INSERT INTO imported VALUES (?, ?, 1.0)",
                        [(f.relative, hashlib.sha256(f.path.read_bytes()).hexdigest()) for f in scan.files])
    old.close()

    report = await run_import(settings, archive, quiet=True)
    assert (report.published, report.already_imported, report.default_zone_files) == (4, 4, 4)
    records = await _raw_records(settings, 4)
    assert {RawPage.from_bytes(v).timezone for _, v in records} == {"Europe/Berlin"}
    assert {k for k, _ in records} == {research_id(settings.require_secret_key(), COHORT.participant_ids[1]).encode()}


async def test_files_kafka_did_not_acknowledge_stay_out_of_the_ledger_and_the_next_import_sends_them(
        settings_factory: Callable[..., Settings], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli.importer, "DELIVERY_TIMEOUT_S", 3.0)  # the producer's request timeout
    archive = make_archive(tmp_path / "archive")
    own = BrokerService(EmbeddedBroker(log_path=tmp_path / "broker.log", ready_timeout=60))
    await own.start()
    try:
        doomed = settings_factory(default_timezone="Europe/Berlin", kafka_bootstrap_servers=own.bootstrap)

        def producer_losing_its_broker(settings: Settings, bootstrap: str | None = None,
                                       **overrides: object) -> AIOKafkaProducer:
            producer = make_producer(settings, bootstrap, **overrides)
            start = producer.start

            async def start_then_lose_the_broker() -> None:
                await start()
                await producer.partitions_for(settings.topic("raw.fitbit"))  # metadata known: sends are queued
                await own.stop()

            producer.start = start_then_lose_the_broker
            return producer

        monkeypatch.setattr(cli.importer, "make_producer", producer_losing_its_broker)
        started = asyncio.get_running_loop().time()
        with pytest.raises(NotDelivered) as failed:
            await run_import(doomed, archive, quiet=True)
        assert asyncio.get_running_loop().time() - started < 30  # bounded by the request timeout, no hang
    finally:
        await own.stop()
    message = str(failed.value)
    assert message.startswith("8 files were not delivered to Kafka") and "\n" not in message
    assert "Re-running the import sends the undelivered files" in message
    assert not any(p in message for p in COHORT.participant_ids)
    assert (failed.value.report.published, failed.value.report.not_delivered) == (0, 8)
    assert _ledger_rows(doomed) == 0  # nothing recorded: not one file reached Kafka

    monkeypatch.undo()
    working = settings_factory(default_timezone="Europe/Berlin")  # the same data dir, the session's broker
    again = await run_import(working, archive, quiet=True)
    assert (again.published, again.already_imported, again.not_delivered) == (8, 0, 0)
    assert _ledger_rows(working) == 8
    assert len(await _raw_records(working, 8)) == 8


def test_the_command_exits_non_zero_with_one_line_naming_the_undelivered_files(
        settings_factory: Callable[..., Settings], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from cli.console import run_async

    monkeypatch.setattr(cli.importer, "DELIVERY_TIMEOUT_S", 2.0)
    archive = make_archive(tmp_path / "archive")
    settings = settings_factory(default_timezone="Europe/Berlin")

    def producer_whose_sends_fail(settings: Settings, bootstrap: str | None = None,
                                  **overrides: object) -> AIOKafkaProducer:
        return make_producer(settings, bootstrap, **overrides, max_request_size=64)  # every page is too large

    monkeypatch.setattr(cli.importer, "make_producer", producer_whose_sends_fail)
    with pytest.raises(SystemExit) as exited:
        run_async(run_import)(settings, archive, quiet=True)
    assert exited.value.code != 0
    error = capsys.readouterr().err.strip()
    assert "8 files were not delivered to Kafka" in error and "Re-running the import" in error
    assert _ledger_rows(settings) == 0


def _add_unsafe_files(archive: Path, outside: Path) -> None:
    """A link to a secret outside the archive, a linked participant folder, a sparse file above the cap,
    a name that is not UTF-8 and an impossible date, beside the good files of ``make_archive``."""
    folder = next((archive / "raw").rglob("activities-steps-intraday")) / COHORT.participant_ids[0]
    outside.mkdir()
    (outside / "service.env").write_bytes(b"WEARABLES_VAULT_KEY=Zm9vYmFy")
    (folder / "activities_steps_date_2021-11-11_1d_1min.json").symlink_to(outside / "service.env")
    (outside / "P3456789012").mkdir()
    (outside / "P3456789012" / "activities_steps_date_2021-11-10_1d_1min.json").write_bytes(b"{}")
    (folder.parent / "P3456789012").symlink_to(outside / "P3456789012", target_is_directory=True)
    with (folder / "activities_steps_date_2021-11-12_1d_1min.json").open("wb") as sparse:
        sparse.truncate(MAX_FILE_BYTES + 1)
    os.close(os.open(os.fsencode(folder) + b"/activities_steps_date_2021-11-13_\xff.json", os.O_CREAT | os.O_WRONLY))
    (folder / "activities_steps_date_2021-13-45_1d_1min.json").write_bytes(b"{}")


async def test_unsafe_files_are_skipped_with_reasons_and_the_rest_is_imported(
        settings_factory: Callable[..., Settings], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = settings_factory(default_timezone="Europe/Berlin")
    archive = make_archive(tmp_path / "archive")
    _add_unsafe_files(archive, tmp_path / "outside")

    report = await run_import(settings, archive)
    assert (report.published, report.already_imported, report.not_delivered) == (8, 0, 0)
    assert {reason: report.skipped[reason] for reason in (
        "a symlink (never followed)", "larger than 64 MiB", "name is not valid UTF-8",
        "the date in the file name is no calendar date")} == {
        "a symlink (never followed)": 2, "larger than 64 MiB": 1, "name is not valid UTF-8": 1,
        "the date in the file name is no calendar date": 1}
    assert sum(report.skipped.values()) == 5 + 5  # make_archive's strays and these
    records = await _raw_records(settings, 8)
    assert len(records) == 8
    assert not any(b"WEARABLES_VAULT_KEY" in value for _, value in records)  # the link's target stayed home

    out = capsys.readouterr().out
    assert "imported 8 file(s), 10 skipped: " in out and "2 a symlink (never followed)" in out
    assert "1 larger than 64 MiB" in out
    assert not any(p in out for p in (*COHORT.participant_ids, "P3456789012"))  # example paths are masked

    stored = (settings.data_dir / "imports.sqlite").read_bytes()
    assert _ledger_rows(settings) == 8
    assert not any(p.encode() in stored for p in COHORT.participant_ids)  # the ledger keys places by HMAC


async def test_a_file_unreadable_at_publish_time_is_skipped_and_an_archive_of_nothing_readable_fails(
        settings_factory: Callable[..., Settings], tmp_path: Path) -> None:
    settings = settings_factory(default_timezone="Europe/Berlin")
    archive = make_archive(tmp_path / "archive")
    scan = scan_archive(archive)
    secret = tmp_path / "secret.env"
    secret.write_bytes(b"WEARABLES_SECRET_KEY=x")
    for file in scan.files:  # each swapped for a link after the scan
        file.path.unlink()
        file.path.symlink_to(secret)
    with pytest.raises(NothingToImport) as failed:
        await run_import(settings, archive, quiet=True, archive=scan)
    assert failed.value.skipped["a symlink (never followed)"] == 8
    assert str(failed.value).startswith("nothing to import: every file was skipped (13 skipped: 8 a symlink")
    assert await _raw_records(settings, 0) == []


def test_an_archive_without_data_files_fails_in_one_line_before_kafka(tmp_path: Path) -> None:
    from cli.console import run_async

    archive = tmp_path / "archive" / "FITBIT" / "activities-steps-intraday" / "P1234567890"
    archive.mkdir(parents=True)
    (archive / "activities_steps_date_2021-11-10_1d_1min.json").symlink_to(tmp_path / "elsewhere.json")
    settings = Settings.model_validate({"env": "demo", "data_dir": tmp_path / "data",
                                        "kafka_bootstrap_servers": "127.0.0.1:9"})  # never reached
    with pytest.raises(NothingToImport, match=r"^nothing to import: every file was skipped \(1 skipped: 1 a symlink"):
        asyncio.run(run_import(settings, tmp_path / "archive", quiet=True))
    with pytest.raises(SystemExit) as exited:
        run_async(run_import)(settings, tmp_path / "archive", quiet=True)
    assert exited.value.code != 0
    assert not (tmp_path / "data" / "imports.sqlite").exists()
