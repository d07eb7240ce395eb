"""PurgeList (runtime/purges.py): which research IDs every consumer skips, read from ``audit``."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import pytest

from models.audit import Action, Actor, AuditRecord, subject_of
from runtime.kafka import make_producer
from runtime.purges import PurgeList
from runtime.settings import Settings
from tests.conftest import wait_until

SECRET = b"a-test-secret-of-reasonable-length"


def test_nobody_is_purged_while_the_list_is_empty() -> None:
    purges = PurgeList(SECRET)
    assert len(purges) == 0
    assert purges.is_purged("R0001") is False
    assert purges.is_purged(b"R0001") is False
    assert purges.is_purged(None) is False
    assert not purges.ready.is_set()


def test_added_research_id_is_purged_as_str_and_bytes_and_no_other() -> None:
    purges = PurgeList(SECRET)
    purges.add("R0001")
    assert len(purges) == 1
    assert purges.is_purged("R0001") is True
    assert purges.is_purged(b"R0001") is True
    assert purges.is_purged("R0002") is False
    assert purges.is_purged(b"R0002") is False
    assert purges.is_purged(None) is False
    purges.add("R0001")
    assert len(purges) == 1


def test_the_list_holds_pseudonyms_not_research_ids() -> None:
    purges = PurgeList(SECRET)
    purges.add("R0001")
    assert purges._subjects == {subject_of(SECRET, "R0001")}
    assert PurgeList(b"another-secret-entirely-different").is_purged("R0001") is False


def test_a_remembered_no_becomes_yes_after_add() -> None:
    purges = PurgeList(SECRET)
    purges.add("R0001")  # non-empty, so answers are computed and remembered
    assert purges.is_purged("R0002") is False
    assert purges.is_purged("R0002") is False  # the cached answer
    purges.add("R0002")
    assert purges.is_purged("R0002") is True
    assert purges.is_purged(b"R0002") is True
    assert purges.is_purged("R0001") is True


def test_an_audit_purge_record_adds_its_subject_and_others_do_not(caplog: pytest.LogCaptureFixture) -> None:
    purges = PurgeList(SECRET)
    withdraw = AuditRecord(subject_of(SECRET, "R0002"), Action.WITHDRAW, Actor.STAFF, 1.0, "portal")
    removed = AuditRecord(subject_of(SECRET, "R0003"), Action.REMOVED, Actor.SYSTEM, 1.0, "vault", {"vault_rows": 1})
    purge = AuditRecord(subject_of(SECRET, "R0001"), Action.PURGE, Actor.STAFF, 1.0, "portal")
    with caplog.at_level(logging.WARNING, logger="runtime.purges"):
        for value in (withdraw.to_bytes(), removed.to_bytes(), b"garbage", None, purge.to_bytes()):
            purges._read(value)
    assert purges._subjects == {subject_of(SECRET, "R0001")}
    assert [r.message for r in caplog.records if "unreadable audit record" in r.message] == [
        "unreadable audit record skipped (not_json)", "unreadable audit record skipped (not_json)"]



@pytest.mark.integration
async def test_follow_reads_the_audit_log_then_keeps_following(settings_factory: Callable[..., Settings]) -> None:
    from cli.topics import create_all_topics

    settings = settings_factory()
    await create_all_topics(settings)
    secret = settings.require_secret_key()
    topic = settings.topic("audit")
    purged, withdrawn, later = "R-purged", "R-withdrawn", "R-later"
    producer = make_producer(settings)
    await producer.start()
    stop = asyncio.Event()
    purges = PurgeList(secret)
    task: asyncio.Task[None] | None = None
    try:
        for record in (AuditRecord(subject_of(secret, purged), Action.PURGE, Actor.STAFF, time.time(), "portal"),
                       AuditRecord(subject_of(secret, withdrawn), Action.WITHDRAW, Actor.STAFF, time.time(),
                                   "portal")):
            await producer.send_and_wait(topic, record.to_bytes(), key=record.subject.encode())
        await producer.send_and_wait(topic, b"\x00not an audit record", key=b"garbage")

        task = asyncio.create_task(purges.follow(settings, None, stop))
        await asyncio.wait_for(purges.ready.wait(), timeout=30)
        assert purges.is_purged(purged) is True
        assert purges.is_purged(purged.encode()) is True
        assert purges.is_purged(withdrawn) is False
        assert purges.is_purged(later) is False
        assert len(purges) == 1

        record = AuditRecord(subject_of(secret, later), Action.PURGE, Actor.PARTICIPANT, time.time(), "portal")
        await producer.send_and_wait(topic, record.to_bytes(), key=record.subject.encode())
        await wait_until(lambda: purges.is_purged(later), 30, "the later purge to be followed", every=0.1)
        assert len(purges) == 2
        assert purges.is_purged(withdrawn) is False
        assert not task.done()
    finally:
        stop.set()
        if task is not None:
            await asyncio.wait_for(task, timeout=30)
        await producer.stop()
    assert task.done() and task.exception() is None


@pytest.mark.integration
async def test_follow_is_ready_at_once_on_an_empty_audit_log(settings_factory: Callable[..., Settings]) -> None:
    from cli.topics import create_all_topics

    settings = settings_factory()
    await create_all_topics(settings)
    stop = asyncio.Event()
    purges = PurgeList(settings.require_secret_key())
    task = asyncio.create_task(purges.follow(settings, None, stop))
    try:
        await asyncio.wait_for(purges.ready.wait(), timeout=30)
        assert len(purges) == 0
        assert purges.is_purged("R0001") is False
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=30)
