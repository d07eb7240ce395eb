"""A purge end to end on the embedded broker, with the worker and the sink running: one of ten
participants leaves the study and asks for their data to be deleted (``wearables withdraw
--purge``, the portal's "Leave the study"). Afterwards nothing of theirs is in any Parquet
table, in the live keys of ``daily`` and ``participants``, in the worker's day state or in the
vault; replaying ``raw.fitbit`` from the start and reading ``daily``/``intraday`` again with a
new sink group bring nothing of theirs back; every other participant's rows are unchanged."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from connectors.oauth import TokenSet
from connectors.vault import open_vault
from connectors.withdrawal import withdraw
from models.audit import Action, Actor, AuditRecord, subject_of
from models.ids import research_id
from models.providers import Provider
from runtime.kafka import make_consumer, make_producer
from runtime.settings import Settings
from sinks.dataset import Dataset
from sinks.runner import SinkRunner
from sinks.tables import STAGING, TABLES, Table
from tests.builders import fitbit_minute_pages, fitbit_page
from tests.conftest import wait_until, worker

pytestmark = pytest.mark.integration
PARTICIPANTS = 10
DAYS = 3
ALL_TABLES: tuple[Table, ...] = (*TABLES.values(), *STAGING)


def _rows(dataset: Dataset, *, without: str | None = None) -> dict[str, pl.DataFrame]:
    out = {}
    for table in ALL_TABLES:
        rows = dataset.read_all(table)
        if without is not None:
            rows = rows.filter(pl.col("person_id") != without)
        out[table.name] = rows.sort(table.key)
    return out


async def _read_all(settings: Settings, topic: str) -> list[tuple[bytes, bytes | None]]:
    """Every (key, value) of ``topic`` from its start to its end now."""
    consumer: AIOKafkaConsumer = make_consumer(settings, group_id=None)
    await consumer.start()
    try:
        await consumer.topics()  # fetches the cluster metadata
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        out: list[tuple[bytes, bytes | None]] = []
        while True:
            positions = [await consumer.position(tp) for tp in partitions]
            if all(at >= ends[tp] for at, tp in zip(positions, partitions, strict=True)):
                return out
            for records in (await consumer.getmany(timeout_ms=500)).values():
                out += [(r.key, r.value) for r in records]
    finally:
        await consumer.stop()



@pytest.mark.timeout(240)
async def test_a_purge_removes_one_participant_everywhere_and_nothing_else(
        settings_factory: Callable[..., Settings], tmp_path: Path) -> None:
    settings = settings_factory(sink_flush_interval=0.5, finalize_interval=3600)
    secret = settings.require_secret_key()
    participants = [f"P{n:03d}" for n in range(PARTICIPANTS)]
    rids = [research_id(secret, p) for p in participants]
    gone = rids[3]
    first = date.today() - timedelta(days=DAYS + 1)
    location = str(tmp_path / "dataset")
    dataset = Dataset(location)

    async with open_vault(settings) as vault, worker(settings) as pipeline:
        producer = make_producer(settings)
        await producer.start()
        sink = SinkRunner(settings, location=location)
        try:
            for n, rid in enumerate(rids):
                link = await vault.link(rid, Provider.FITBIT, f"VU{n}",
                                        TokenSet(f"access-{n}", f"refresh-{n}", time.time() + 3600))
                await producer.send_and_wait(settings.topic("participants"), link.record("k1").to_bytes(),
                                             key=rid.encode())
                for offset in range(DAYS):
                    day = first + timedelta(days=offset)
                    for data_type, body in fitbit_minute_pages(day, n):
                        page = fitbit_page(data_type, body, day=day)
                        await producer.send(settings.topic("raw.fitbit"), page.to_bytes(), key=rid.encode())
            await producer.flush()
            async with sink.running():
                await wait_until(lambda: dataset.read_all(TABLES["daily_summary"]).height == PARTICIPANTS * DAYS,
                                120, "every participant-day in daily_summary")
                await asyncio.sleep(2)  # the last flush of intraday rows
                before = _rows(dataset, without=gone)
                assert (dataset.read_all(TABLES["steps_intraday"])["person_id"] == gone).sum() == DAYS * 1440

                dates = tuple(sorted({d.isoformat() for d in dataset.read_all(TABLES["daily_summary"]).filter(
                    pl.col("person_id") == gone)["date"]}))
                report = await withdraw(settings, vault, producer, {}, gone, actor=Actor.STAFF, purge=True,
                                        dates=dates)
                assert report.purged and report.daily_days == DAYS

                def purged_everywhere() -> bool:
                    return all((rows["person_id"] != gone).all() for rows in _rows(dataset).values())

                await wait_until(purged_everywhere, 60, "the sink to remove the participant's rows")
                await asyncio.sleep(2)
                now = _rows(dataset, without=gone)
                assert all(now[name].equals(frame) for name, frame in before.items())

            # the worker's day state: no key of theirs (their changelog tombstones were written)
            days = pipeline.app.tables["days"]
            assert not [k for k in days if k.startswith(f"{gone}|".encode())]
            assert [k for k in days if k.startswith(f"{rids[0]}|".encode())]  # the others' are there
            assert await vault.get(gone) is None and await vault.get(rids[0]) is not None

            # compaction semantics: the latest record of each of their keys is a tombstone
            for topic, keys in (("daily", {f"{gone}|{d}".encode() for d in dates}), ("participants", {gone.encode()})):
                latest: dict[bytes, bytes | None] = {}
                for key, value in await _read_all(settings, settings.topic(topic)):
                    latest[key] = value
                theirs = {k: v for k, v in latest.items() if k.startswith(gone.encode())}
                assert set(theirs) == keys and all(v is None for v in theirs.values()), topic
                assert sum(v is not None for v in latest.values()) >= PARTICIPANTS - 1

            # the audit log: who asked, and what each component removed, with no research ID in clear
            audit = [AuditRecord.from_bytes(v or b"") for _, v in await _read_all(settings, settings.topic("audit"))]
            subject = subject_of(secret, gone)
            assert {(r.action, r.component) for r in audit if r.subject == subject} >= {
                (Action.WITHDRAW, "portal"), (Action.PURGE, "portal"), (Action.REMOVED, "worker"),
                (Action.REMOVED, "sink"), (Action.REMOVED, "vault")}
            assert next(r for r in audit if r.action is Action.PURGE).actor is Actor.STAFF
            worker_part = next(r for r in audit if r.component == "worker")
            assert worker_part.removed == {"day_states": DAYS, "daily_tombstones": DAYS}
            sink_part = next(r for r in audit if r.component == "sink")
            assert sink_part.removed["steps_intraday"] == DAYS * 1440
            assert not any(gone.encode() in (v or b"") for _, v in await _read_all(settings, settings.topic("audit")))

            # a replay of raw.fitbit from the start through the running worker brings nothing back
            raw = await _read_all(settings, settings.topic("raw.fitbit"))
            samples_before = [k for k, _ in await _read_all(settings, settings.topic("samples"))].count(gone.encode())
            pages_before = pipeline.progress.snapshot().get("raw_pages", 0)
            for key, value in raw:
                await producer.send(settings.topic("raw.fitbit"), value, key=key)
            await producer.flush()
            mine = sum(key == gone.encode() for key, _ in raw)
            await wait_until(lambda: pipeline.progress.snapshot().get("raw_pages", 0) >= pages_before + len(raw) - mine,
                            90, "the worker to read the replayed pages")
            await SinkRunner(settings, location=location, idle_exit=3).drain()
            assert not [k for k in days if k.startswith(f"{gone}|".encode())]
            samples_after = [k for k, _ in await _read_all(settings, settings.topic("samples"))].count(gone.encode())
            assert samples_after == samples_before  # the normalize agent skipped their pages
            assert all((rows["person_id"] != gone).all() for rows in _rows(dataset).values())
            after = _rows(dataset, without=gone)
            assert all(after[name].equals(frame) for name, frame in before.items())

            # a new sink group reading daily and intraday from their start skips them too
            fresh = str(tmp_path / "again")
            await SinkRunner(settings, location=fresh, group="another-sink", idle_exit=3).drain()
            again = _rows(Dataset(fresh))
            assert again["daily_summary"].height == (PARTICIPANTS - 1) * DAYS
            assert all((rows["person_id"] != gone).all() for rows in again.values())
            # ... without writing their rows first and removing them at the marker: it had none to remove
            audit = [AuditRecord.from_bytes(v or b"") for _, v in await _read_all(settings, settings.topic("audit"))]
            sink_parts = [r for r in audit if r.component == "sink" and r.subject == subject]
            assert len(sink_parts) == 2 and sink_parts[-1].removed == {}
        finally:
            await producer.stop()
