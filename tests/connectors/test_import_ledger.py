"""The import ledger remembers (place, content digest, zone) across runs: a changed file is new again,
and a file an earlier version published without a zone is new once it gets the default zone. It keeps
places only as a keyed hash (they hold participant IDs), and moves an earlier version's clear places
into that form."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from connectors.import_ledger import ImportLedger, ledger_key

KEY = ledger_key(b"test-secret-key")
PLACE = "activities-heart-intraday/P1234567890/activities_heart_date_2021-11-10_1d_1sec.json"
OTHER = "activities-heart-intraday/P2345678901/activities_heart_date_2021-11-10_1d_1sec.json"


def test_a_recorded_file_is_seen_until_its_content_changes(tmp_path: Path) -> None:
    path = tmp_path / "state" / "ledger.sqlite"
    ledger = ImportLedger(path, key=KEY)
    assert not ledger.seen(PLACE, "aaa")
    ledger.record([(PLACE, "aaa", "America/Chicago"), (PLACE, "aaa", "America/Chicago")])  # twice: once
    ledger.close()
    again = ImportLedger(path, key=KEY)  # a later run
    try:
        assert again.seen(PLACE, "aaa")
        assert again.seen(PLACE, "aaa", with_zone=True)
        assert not again.seen(PLACE, "bbb")  # the file changed
        assert not again.seen(OTHER, "aaa")
        rows = again._db.execute("SELECT sha256, zone FROM published").fetchall()
        assert rows == [("aaa", "America/Chicago")]
    finally:
        again.close()
    other_secret = ImportLedger(path, key=ledger_key(b"another-secret"))  # new research IDs: new files too
    try:
        assert not other_secret.seen(PLACE, "aaa")
    finally:
        other_secret.close()


def test_the_ledger_file_holds_no_participant_id(tmp_path: Path) -> None:
    path = tmp_path / "imports.sqlite"
    ledger = ImportLedger(path, key=KEY)
    ledger.record([(PLACE, "aaa", "America/Chicago"), (OTHER, "bbb", "Europe/Berlin")])
    ledger.close()
    stored = path.read_bytes()
    assert b"P1234567890" not in stored and b"P2345678901" not in stored
    assert b"activities-heart-intraday" not in stored and b"2021-11-10" not in stored


def test_an_earlier_ledger_with_clear_places_is_hashed_in_place_and_the_clear_places_leave_the_file(
        tmp_path: Path) -> None:
    path = tmp_path / "imports.sqlite"
    old = sqlite3.connect(path)  # the ledger as the previous version wrote it
    with old:
        old.execute("CREATE TABLE imported "
                    "(relative TEXT, sha256 TEXT, at REAL, zone TEXT, PRIMARY KEY (relative, sha256))")
        old.executemany("INSERT INTO imported VALUES (?, ?, 1.0, ?)",
                        [(PLACE, "aaa", "America/Chicago"), (OTHER, "bbb", None)])
    old.close()
    assert b"P1234567890" in path.read_bytes()

    ledger = ImportLedger(path, key=KEY)
    try:
        assert ledger.seen(PLACE, "aaa", with_zone=True)  # nothing is published again
        assert ledger.seen(OTHER, "bbb") and not ledger.seen(OTHER, "bbb", with_zone=True)
        tables = {row[0] for row in ledger._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert tables == {"published"}
    finally:
        ledger.close()
    stored = path.read_bytes()
    assert b"P1234567890" not in stored and b"P2345678901" not in stored
    assert not (tmp_path / "imports.sqlite-journal").exists()


def test_rows_of_a_ledger_without_zones_need_a_zone_to_count_for_default_zoned_files(tmp_path: Path) -> None:
    path = tmp_path / "imports.sqlite"
    old = sqlite3.connect(path)  # the ledger as earlier versions wrote it: no zone column
    with old:
        old.execute("CREATE TABLE imported (relative TEXT, sha256 TEXT, at REAL, PRIMARY KEY (relative, sha256))")
        old.execute("INSERT INTO imported VALUES ('sleep/P1234567890/sleep_date_2021-11-10.json', 'aaa', 1.0)")
    old.close()

    ledger = ImportLedger(path, key=KEY)
    try:
        assert ledger.seen("sleep/P1234567890/sleep_date_2021-11-10.json", "aaa")  # a profile's zone: as it was
        assert not ledger.seen("sleep/P1234567890/sleep_date_2021-11-10.json", "aaa", with_zone=True)  # zone-less
        ledger.record([("sleep/P1234567890/sleep_date_2021-11-10.json", "aaa", "Europe/Berlin")])
        assert ledger.seen("sleep/P1234567890/sleep_date_2021-11-10.json", "aaa", with_zone=True)
        assert ledger._db.execute("SELECT count(*) FROM published").fetchone() == (1,)
    finally:
        ledger.close()
    assert b"P1234567890" not in path.read_bytes()
