"""The import ledger remembers (place, content digest) across runs: a changed file is new again."""

from __future__ import annotations

from pathlib import Path

from connectors.import_ledger import ImportLedger


def test_a_recorded_file_is_seen_until_its_content_changes(tmp_path: Path) -> None:
    path = tmp_path / "state" / "ledger.sqlite"
    ledger = ImportLedger(path)
    assert not ledger.seen("FITBIT/heart/P1/day.json", "aaa")
    ledger.record([("FITBIT/heart/P1/day.json", "aaa"), ("FITBIT/heart/P1/day.json", "aaa")])  # twice: once
    ledger.close()
    again = ImportLedger(path)  # a later run
    try:
        assert again.seen("FITBIT/heart/P1/day.json", "aaa")
        assert not again.seen("FITBIT/heart/P1/day.json", "bbb")  # the file changed
        assert not again.seen("FITBIT/heart/P2/day.json", "aaa")
    finally:
        again.close()
