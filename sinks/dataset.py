"""A Parquet dataset on a path or an object store: one directory per table, one file per date.

Layout: ``<root>/<table>/date=YYYY-MM-DD/data.parquet`` (Hive-style, so
``pl.scan_parquet(root + "/steps_intraday/**/*.parquet", hive_partitioning=True)`` reads a
table and filters by date without opening other files).

Upsert: a partition's new rows replace the rows with the same key, and the whole partition is
written again as one file, so a table never accumulates small files (compaction is the write
itself) and a key is never in two files. A reader never sees a half-written file: on a local
path the file is written beside its final name and renamed over it (atomic on POSIX); on an
object store a PUT is atomic by itself. Rows are sorted by key, so the same rows give the same
file bytes (re-running changes nothing).

Durability, on a local path: the temporary file is fsynced before the rename and the directory
after it, so a power cut leaves the old file or the new one, never an empty one. A write that
fails (a full disk: ENOSPC, EFBIG) removes its temporary file and raises the ``OSError``; the
old file stays as it was. ``remove_stale_temporaries`` clears what a killed process left.

A partition file that does not read (corrupt Parquet) raises :class:`CorruptPartition`, or, for
the sink (``quarantine=True``), is moved aside to ``data.parquet.corrupt-<UTC time>``, counted in
``wearables_sink_quarantined_files_total`` and read as empty: the next write of that date holds
what the sink wrote since, and the rest comes back by re-driving the topics
(docs/operations.md#sink-quarantined-files).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import time
import uuid
from collections.abc import Iterable
from datetime import UTC, date, datetime

import fsspec
import polars as pl
from fsspec.implementations.local import LocalFileSystem

from models.errors import WearablesError
from runtime.metrics import counter
from sinks.tables import STAGING, TABLES, Table

__all__ = ["PARTITION", "QUARANTINED", "CorruptPartition", "Dataset"]

logger = logging.getLogger(__name__)

PARTITION = "date"  # the Hive partition column name of every table's directories
_FILE = "data.parquet"
_TEMPORARY = ".tmp"  # the suffix of a file being written (no *.parquet glob matches it)
#: What a corrupt file that Polars cannot read raises (a PanicException is a BaseException).
_UNREADABLE = (pl.exceptions.PolarsError, pl.exceptions.PanicException)

QUARANTINED = counter("sink_quarantined_files_total", "Partition files that did not read (corrupt Parquet) and "
                      "were moved aside, by table", ["table"],
                      initial=[(t.name,) for t in (*TABLES.values(), *STAGING)])


class CorruptPartition(WearablesError):
    """A partition file that does not read as Parquet; the message names the file (a table and a date)."""

    def __init__(self, path: str, error: BaseException) -> None:
        super().__init__(f"{path} does not read as Parquet ({type(error).__name__}: {str(error)[:200]}); "
                         "see docs/operations.md#sink-quarantined-files")
        self.path = path


class Dataset:
    """Partitioned Parquet tables under ``location`` (a path, ``file://``, ``s3://``, ``memory://`` ...).

    :param quarantine: move a partition file that does not read aside and read it as empty (the
        sink, which rebuilds it), rather than raise :class:`CorruptPartition` (every other reader).
    """

    def __init__(self, location: str, *, quarantine: bool = False, **storage_options: object) -> None:
        self.fs, root = fsspec.core.url_to_fs(location, **storage_options)
        self.root = root.rstrip("/")
        self.location = location
        self.quarantine = quarantine
        self._local = isinstance(self.fs, LocalFileSystem)

    def path(self, table: str, day: date | None = None) -> str:
        base = f"{self.root}/{table}"
        return base if day is None else f"{base}/{PARTITION}={day.isoformat()}/{_FILE}"

    def dates(self, table: str) -> list[date]:
        """The partitions (dates) of a table, in order."""
        base = self.path(table)
        if not self.fs.exists(base):
            return []
        found = []
        for entry in self.fs.ls(base, detail=False):
            name = str(entry).rstrip("/").rpartition("/")[2]
            if name.startswith(f"{PARTITION}=") and self.fs.exists(f"{entry}/{_FILE}"):
                found.append(date.fromisoformat(name.partition("=")[2]))
        return sorted(found)

    def read(self, table: Table, day: date) -> pl.DataFrame:
        """One partition (empty, with the table's schema, if it does not exist)."""
        path = self.path(table.name, day)
        if not self.fs.exists(path):
            return table.empty()
        frame = self._read_file(table, path)
        return table.empty() if frame is None else table.conform(frame)

    def read_all(self, table: Table, days: Iterable[date] | None = None) -> pl.DataFrame:
        chosen = self.dates(table.name) if days is None else list(days)
        frames = [self.read(table, d) for d in chosen]
        return pl.concat(frames) if frames else table.empty()

    def upsert(self, table: Table, rows: pl.DataFrame) -> dict[date, int]:
        """Merge ``rows`` (the table's columns) into their partitions; the newest row of a key wins.

        Returns the row count of each partition written.
        """
        rows = table.conform(rows)
        if rows.is_empty():
            return {}
        written = {}
        for (day,), part in rows.with_columns(_partition_expr(table)).group_by("__day", maintain_order=True):
            merged = pl.concat([self.read(table, day), part.drop("__day")])
            merged = merged.unique(subset=list(table.key), keep="last", maintain_order=True).sort(table.key)
            self.write(table, day, merged)
            written[day] = merged.height
        return written

    def remove(self, table: Table, rows: pl.DataFrame) -> dict[date, int]:
        """Remove the rows with the keys of ``rows`` (the vendor withdrew them) from their partitions.

        Returns the rows removed from each partition rewritten; a partition that held none of
        them is not rewritten.
        """
        rows = table.conform(rows)
        removed = {}
        for (day,), part in rows.with_columns(_partition_expr(table)).group_by("__day", maintain_order=True):
            current = self.read(table, day)
            kept = current.join(part.select(table.key), on=list(table.key), how="anti", nulls_equal=True)
            if kept.height < current.height:
                self.replace(table, day, kept)
                removed[day] = current.height - kept.height
        return removed

    def remove_person(self, table: Table, person_id: str) -> dict[date, int]:
        """Remove every row of ``person_id`` (a purge): the rows removed per partition rewritten.

        Only the ``person_id`` column of each partition is read first, so partitions without the
        participant cost a column read and are not rewritten.
        """
        removed = {}
        for day in self.dates(table.name):
            frame = self._read_file(table, self.path(table.name, day), columns=["person_id"])
            if frame is None or not (frame["person_id"] == person_id).any():
                continue
            current = self.read(table, day)
            kept = current.filter(pl.col("person_id") != person_id)
            self.replace(table, day, kept)
            removed[day] = current.height - kept.height
        return removed

    def replace(self, table: Table, day: date, rows: pl.DataFrame) -> None:
        """Make a partition hold exactly ``rows`` (derived tables recomputed for a date)."""
        rows = table.conform(rows).unique(subset=list(table.key), keep="last", maintain_order=True).sort(table.key)
        if rows.is_empty():
            self.delete(table, day)
        else:
            self.write(table, day, rows)

    def delete(self, table: Table, day: date) -> None:
        path = self.path(table.name, day)
        if self.fs.exists(path):
            self.fs.rm(path)
            if self._local:
                _fsync_directory(os.path.dirname(path))

    def write(self, table: Table, day: date, rows: pl.DataFrame) -> None:
        """Write a partition whole. On a local path an ``OSError`` (a full disk) leaves the old
        file and no temporary file behind."""
        path = self.path(table.name, day)
        self.fs.makedirs(path.rpartition("/")[0], exist_ok=True)
        buffer = io.BytesIO()
        table.conform(rows).write_parquet(buffer, compression="zstd", statistics=True)
        if self._local:  # a sibling whose name no *.parquet glob matches, then an atomic rename
            _write_atomically(path, buffer.getbuffer())
        else:
            self.fs.pipe_file(path, buffer.getvalue())

    def remove_stale_temporaries(self, older_than: float = 3600.0) -> int:
        """Remove the ``*.tmp`` files of writes that never finished (a process killed mid-write),
        if older than ``older_than`` seconds: a younger one may be another process's write in
        progress. Local paths only (an object-store PUT leaves nothing behind). How many went."""
        if not self._local or not os.path.isdir(self.root):
            return 0
        removed, cutoff = 0, time.time() - older_than
        for directory, _, names in os.walk(self.root):
            for name in names:
                if not (name.startswith(f"{_FILE}.") and name.endswith(_TEMPORARY)):
                    continue
                path = os.path.join(directory, name)
                with contextlib.suppress(FileNotFoundError):  # its writer finished or removed it meanwhile
                    if os.stat(path).st_mtime < cutoff:
                        os.unlink(path)
                        removed += 1
        return removed

    def _read_file(self, table: Table, path: str, columns: list[str] | None = None) -> pl.DataFrame | None:
        """The file's rows, or None when it did not read and was quarantined."""
        try:
            with self.fs.open(path, "rb") as handle:
                return pl.read_parquet(handle, columns=columns)
        except _UNREADABLE as error:
            if not self.quarantine:
                raise CorruptPartition(path, error) from None
            self._quarantine(table, path, error)
            return None

    def _quarantine(self, table: Table, path: str, error: BaseException) -> None:
        aside = f"{path}.corrupt-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S.%fZ')}"
        if self._local:
            os.replace(path, aside)
            _fsync_directory(os.path.dirname(path))
        else:
            self.fs.mv(path, aside)
        QUARANTINED.labels(table=table.name).inc()
        # coordinates only (a table, a date): a partition file holds many participants
        logger.error("dataset: %s did not read (%s); moved aside to %s and rebuilt from what the sink writes "
                     "next; re-drive the topics for the rest (docs/operations.md#sink-quarantined-files)",
                     path, type(error).__name__, aside.rpartition("/")[2])


def _write_atomically(path: str, data: memoryview) -> None:
    """``data`` into ``path`` through a fsynced temporary sibling and a rename; nothing left on failure."""
    temporary = f"{path}.{uuid.uuid4().hex}{_TEMPORARY}"
    try:
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())  # the bytes are on disk before the name points at them
        os.replace(temporary, path)
    except BaseException:  # ENOSPC, EFBIG, a cancelled thread: a full disk must not fill up with *.tmp
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    _fsync_directory(os.path.dirname(path))  # ... and the rename itself survives a power cut


def _fsync_directory(directory: str) -> None:
    descriptor = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _partition_expr(table: Table) -> pl.Expr:
    column = pl.col(table.partition_by)
    dtype = table.schema[table.partition_by]
    return (column.dt.date() if isinstance(dtype, pl.Datetime) else column).alias("__day")
