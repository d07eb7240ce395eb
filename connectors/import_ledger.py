"""Which archive files were already published, so that importing twice publishes nothing new.

A SQLite file in the data directory, keyed by the file's place in the archive and the SHA-256
of its content: a file that changed is published again (dedup downstream sorts out overlap).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path

__all__ = ["ImportLedger"]


class ImportLedger:
    """``ledger.seen(relative, digest)``; ``ledger.record([(relative, digest), ...])`` after publishing."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS imported (relative TEXT, sha256 TEXT, at REAL, PRIMARY KEY (relative, sha256))"
        )

    def seen(self, relative: str, digest: str) -> bool:
        row = self._db.execute("SELECT 1 FROM imported WHERE relative = ? AND sha256 = ?", (relative, digest))
        return row.fetchone() is not None

    def record(self, entries: Iterable[tuple[str, str]]) -> None:
        now = time.time()
        with self._db:
            self._db.executemany("INSERT OR IGNORE INTO imported VALUES (?, ?, ?)",
                                 [(relative, digest, now) for relative, digest in entries])

    def close(self) -> None:
        self._db.close()
