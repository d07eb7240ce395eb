"""The import ledger remembers (place, content digest, zone) across runs: a changed file is new again,
and a file an earlier version published without a zone is new once it gets the default zone."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from connectors.import_ledger import ImportLedger


def test_a_recorded_file_is_seen_until_its_content_changes(tmp_path: Path) -> None:
    path = tmp_path / "state" / "ledger.sqlite"
    ledger = ImportLedger(path)
    assert not ledger.seen("FITBIT/heart/P1/day.json", "aaa")
    ledger.record([("FITBIT/heart/P1/day.json", "aaa", "America/Chicago"),
                   ("FITBIT/heart/P1/day.json", "aaa", "America/Chicago")])  # twice: once
    ledger.close()
    again = ImportLedger(path)  # a later run
    try:
        assert again.seen("FITBIT/heart/P1/day.json", "aaa")
        assert again.seen("FITBIT/heart/P1/day.json", "aaa", with_zone=True)
        assert not again.seen("FITBIT/heart/P1/day.json", "bbb")  # the file changed
        assert not again.seen("FITBIT/heart/P2/day.json", "aaa")
        rows = again._db.execute("SELECT relative, sha256, zone FROM imported").fetchall()
        assert rows == [("FITBIT/heart/P1/day.json", "aaa", "America/Chicago")]
    finally:
        again.close()


def test_rows_of_a_ledger_without_zones_need_a_zone_to_count_for_default_zoned_files(tmp_path: Path) -> None:
    path = tmp_path / "imports.sqlite"
    old = sqlite3.connect(path)  # the ledger as earlier versions wrote it: no zone column
    with old:
        old.execute("CREATE TABLE imported (relative TEXT, sha256 TEXT, at REAL, PRIMARY KEY (relative, sha256))")
        old.execute("INSERT INTO imported VALUES ('sleep/P1/sleep_date_2021-11-10.json', 'aaa', 1.0)")
    old.close()

    ledger = ImportLedger(path)
    try:
        assert ledger.seen("sleep/P1/sleep_date_2021-11-10.json", "aaa")  # a profile's zone: as it was
        assert not ledger.seen("sleep/P1/sleep_date_2021-11-10.json", "aaa", with_zone=True)  # was zone-less
        ledger.record([("sleep/P1/sleep_date_2021-11-10.json", "aaa", "Europe/Berlin")])
        assert ledger.seen("sleep/P1/sleep_date_2021-11-10.json", "aaa", with_zone=True)
        assert ledger._db.execute("SELECT count(*) FROM imported").fetchone() == (1,)
    finally:
        ledger.close()
