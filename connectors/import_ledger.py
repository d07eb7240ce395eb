"""Which archive files were already published, so that importing twice publishes nothing new.

A SQLite file in the data directory, keyed by the file's place in the archive and the SHA-256
of its content: a file that changed is published again (dedup downstream sorts out overlap).
The place is never stored as such: it holds the participant ID (``sleep/P1234567890/...``), so
the ledger keeps only HMAC-SHA256 of it, under a key derived from ``WEARABLES_SECRET_KEY``
(``ledger_key``). A new secret key makes every file new again, as it makes new research IDs.

Each row also keeps the time zone the file's page carried. Ledgers written before that column
existed have none in their rows; an importer of that time published the pages of participants
without a profile with no zone at all (the normalizer dead-lettered them), so such a file is
"seen" only when its zone comes from a profile again (``with_zone=False``), and published anew
when it now gets the cohort's default zone (``with_zone=True``).

Migration: ledgers of earlier versions kept the places in clear in a table ``imported``. Opening
one moves its rows into ``published`` (their places hashed, digests and zones kept, so nothing
is published again), drops ``imported`` and vacuums the file, so the clear places leave the disk.
"""

from __future__ import annotations

import hashlib
import hmac
import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path

__all__ = ["ImportLedger", "ledger_key"]

_PURPOSE = b"import-ledger"


def ledger_key(secret: bytes) -> bytes:
    """The HMAC key of the ledger's places, derived from the secret key as runtime.keys derives its keys."""
    return hashlib.sha256(_PURPOSE + b"\x00" + secret).digest()


class ImportLedger:
    """``ledger.seen(relative, digest)``; ``ledger.record([(relative, digest, zone), ...])`` once Kafka acked them.

    :param path: the SQLite file (``$WEARABLES_DATA_DIR/imports.sqlite``).
    :param key: the HMAC key of the places (``ledger_key(settings.require_secret_key())``).
    """

    def __init__(self, path: Path, *, key: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._key = key
        self._db = sqlite3.connect(path)
        with self._db:
            self._db.execute("CREATE TABLE IF NOT EXISTS published "
                             "(place TEXT, sha256 TEXT, at REAL, zone TEXT, PRIMARY KEY (place, sha256))")
            migrated = self._migrate_clear_places()
        if migrated:
            self._db.execute("VACUUM")  # the dropped table's pages still hold the clear places until then

    def _place(self, relative: str) -> str:
        return hmac.new(self._key, relative.encode("utf-8", "surrogateescape"), hashlib.sha256).hexdigest()

    def _migrate_clear_places(self) -> bool:
        """Move the rows of an earlier version's ``imported`` table (clear places) into ``published``."""
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(imported)")}  # none: no such table
        if not columns:
            return False
        query = ("SELECT relative, sha256, at, zone FROM imported" if "zone" in columns
                 else "SELECT relative, sha256, at, NULL FROM imported")  # before the zone column, as described above
        rows = self._db.execute(query).fetchall()
        self._db.executemany("INSERT INTO published (place, sha256, at, zone) VALUES (?, ?, ?, ?) "
                             "ON CONFLICT (place, sha256) DO NOTHING",
                             [(self._place(relative), digest, at, zone) for relative, digest, at, zone in rows])
        self._db.execute("DROP TABLE imported")
        return True

    def seen(self, relative: str, digest: str, *, with_zone: bool = False) -> bool:
        """Whether this content at this place was published (``with_zone``: published with a time zone)."""
        query = "SELECT 1 FROM published WHERE place = ? AND sha256 = ?"
        row = self._db.execute(query + (" AND zone IS NOT NULL" if with_zone else ""), (self._place(relative), digest))
        return row.fetchone() is not None

    def record(self, entries: Iterable[tuple[str, str, str]]) -> None:
        """Remember ``(relative, digest, zone)`` of files the broker acknowledged (the latest zone wins)."""
        now = time.time()
        with self._db:
            self._db.executemany(
                "INSERT INTO published (place, sha256, at, zone) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (place, sha256) DO UPDATE SET zone = excluded.zone, at = excluded.at",
                [(self._place(relative), digest, now, zone) for relative, digest, zone in entries])

    def close(self) -> None:
        self._db.close()
