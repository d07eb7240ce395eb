"""Which archive files were already published, so that importing twice publishes nothing new.

A SQLite file in the data directory, keyed by the file's place in the archive and the SHA-256
of its content: a file that changed is published again (dedup downstream sorts out overlap).
Each row also keeps the time zone the file's page carried. Ledgers written before that column
existed have none in their rows; an importer of that time published the pages of participants
without a profile with no zone at all (the normalizer dead-lettered them), so such a file is
"seen" only when its zone comes from a profile again (``with_zone=False``), and published anew
when it now gets the cohort's default zone (``with_zone=True``).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path

__all__ = ["ImportLedger"]


class ImportLedger:
    """``ledger.seen(relative, digest)``; ``ledger.record([(relative, digest, zone), ...])`` once Kafka acked them."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path)
        with self._db:
            self._db.execute("CREATE TABLE IF NOT EXISTS imported "
                             "(relative TEXT, sha256 TEXT, at REAL, zone TEXT, PRIMARY KEY (relative, sha256))")
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(imported)")}
            if "zone" not in columns:  # a ledger of an earlier version: its rows keep a NULL zone
                self._db.execute("ALTER TABLE imported ADD COLUMN zone TEXT")

    def seen(self, relative: str, digest: str, *, with_zone: bool = False) -> bool:
        """Whether this content at this place was published (``with_zone``: published with a time zone)."""
        query = "SELECT 1 FROM imported WHERE relative = ? AND sha256 = ?"
        row = self._db.execute(query + (" AND zone IS NOT NULL" if with_zone else ""), (relative, digest))
        return row.fetchone() is not None

    def record(self, entries: Iterable[tuple[str, str, str]]) -> None:
        """Remember ``(relative, digest, zone)`` of files the broker acknowledged (the latest zone wins)."""
        now = time.time()
        with self._db:
            self._db.executemany(
                "INSERT INTO imported (relative, sha256, at, zone) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (relative, sha256) DO UPDATE SET zone = excluded.zone, at = excluded.at",
                [(relative, digest, now, zone) for relative, digest, zone in entries])

    def close(self) -> None:
        self._db.close()
