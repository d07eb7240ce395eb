"""`wearables import` against the embedded broker: every file published once, keyed by research_id."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from cli.importer import run_import
from models.ids import research_id
from models.raw import RawPage
from runtime.kafka import make_consumer
from runtime.settings import Settings
from streams.normalize import normalize
from tests.connectors.test_archive import COHORT, make_archive

pytestmark = pytest.mark.integration


async def _raw_records(settings: Settings, expected: int) -> list[tuple[bytes, bytes]]:
    consumer = make_consumer(settings, settings.topic("raw.fitbit"), group_id="import-check")
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


async def test_import_publishes_every_file_once(settings_factory: Callable[..., Settings], tmp_path: Path) -> None:
    settings = settings_factory()
    archive = make_archive(tmp_path / "archive")
    first = await run_import(settings, archive, quiet=True)
    assert first.published == 8 and first.already_imported == 0
    assert sum(first.skipped.values()) == 5
    assert first.without_zone == 4  # the second participant has no profile.json

    again = await run_import(settings, archive, quiet=True)
    assert (again.published, again.already_imported) == (0, 8)

    records = await _raw_records(settings, 8)
    assert len(records) == 8
    secret = settings.require_secret_key()
    keys = {research_id(secret, p).encode() for p in COHORT.participant_ids}
    assert {key for key, _ in records} == keys
    with_zone = research_id(secret, COHORT.participant_ids[0]).encode()
    for key, value in records:
        page = RawPage.from_bytes(value)
        assert page.origin == "archive" and page.date in ("2021-11-09", "2021-11-10")
        assert not any(p.encode() in value for p in COHORT.participant_ids)  # no participant ID on the wire
        if key == with_zone:
            assert page.timezone == "America/Chicago"
            assert normalize(page, key.decode(), secret=secret).samples > 1000

    forced = await run_import(settings, archive, force=True, quiet=True)
    assert forced.published == 8
